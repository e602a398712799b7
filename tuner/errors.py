"""Domain errors. Every OSError from /proc, /sys or tracefs is turned into one of these
in exactly one place (:func:`mltune.sysfs.translate`), chained with ``from err``."""

from __future__ import annotations


class MltuneError(Exception):
    """Base of every error mltune reports to a user as one line."""


class KnobMissing(MltuneError):
    """The knob file does not exist (ENOENT) although its owner does."""


class NotPermitted(MltuneError):
    """The kernel refused access (EACCES, EPERM, EROFS)."""


class ValueRejected(MltuneError):
    """The kernel refused the value written (EINVAL, ERANGE)."""


class DeviceGone(MltuneError):
    """The device or object that owns the knob disappeared (removed loop device, ENODEV)."""


class Unparsable(MltuneError):
    """A kernel file holds something other than the value it should (garbled, truncated,
    out of range): the kernel, a mount or a --root copy is not what mltune expects."""


class WriteMismatch(MltuneError):
    """A write was accepted but reading back shows a different value."""


class ModelError(MltuneError):
    """A model file is missing, unreadable, tampered with or does not fit the driver."""


class StateError(MltuneError):
    """The journal of original values is unreadable or corrupt; tuning must stop."""


class ConfigError(MltuneError):
    """A configuration file or option is invalid."""
