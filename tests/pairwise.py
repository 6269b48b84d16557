"""All pairs: a short list of parameter combinations in which any two factors meet in every pair of values.

A test parametrised by the full cross product of k factors runs n₁·n₂·…·n_k cases.  A bug that depends on
one factor shows in any of them, and one that depends on two (a float32 input and huge logits, a padded
window and count_include_pad) shows wherever that pair of values meets; all-pairs keeps every such
meeting in about n_largest · n_second cases.  Use it where a third factor adds nothing to what the test
proves; keep the cross product where a three-way meeting is the point.
"""
import itertools

__all__ = ["all_pairs"]


def all_pairs(*factors):
    """Rows, one value from each factor, that together hold every pair of values of every two factors.

    Greedy and deterministic: each row is the first combination that covers the most pairs not covered
    yet, so the list is the same on every run (and every machine).

    >>> rows = all_pairs(["float32", "float64"], [1, 2, 3], [False, True])
    >>> len(rows), rows[0]   # 6 rows instead of the 12 of the cross product
    (6, ('float32', 1, False))
    """
    factors = [list(factor) for factor in factors]
    factor_pairs = list(itertools.combinations(range(len(factors)), 2))
    uncovered = {(i, a, j, b) for i, j in factor_pairs
                 for a in range(len(factors[i])) for b in range(len(factors[j]))}
    combinations = list(itertools.product(*(range(len(factor)) for factor in factors)))
    rows = [] if factor_pairs else combinations  # one factor: each of its values once

    def new_pairs(row):
        return {(i, row[i], j, row[j]) for i, j in factor_pairs} & uncovered

    while uncovered:
        row = max(combinations, key=lambda combination: len(new_pairs(combination)))
        uncovered -= new_pairs(row)
        rows.append(row)
    return [tuple(factor[index] for factor, index in zip(factors, row)) for row in rows]
