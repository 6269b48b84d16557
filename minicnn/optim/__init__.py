"""Optimizers and learning-rate schedules, with PyTorch's names, arguments and update rules.

>>> optimizer = minicnn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
>>> scheduler = minicnn.optim.lr_scheduler.StepLR(optimizer, step_size=30)
>>> for epoch in range(90):
...     for images, labels in loader:
...         optimizer.zero_grad()
...         loss_fn(model(images), labels).backward()
...         optimizer.step()
...     scheduler.step()
"""
from minicnn.optim import lr_scheduler
from minicnn.optim.adam import Adam, AdamW
from minicnn.optim.optimizer import Optimizer
from minicnn.optim.rmsprop import RMSprop
from minicnn.optim.sgd import SGD

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "RMSprop", "lr_scheduler"]
