"""ORM base of the training database; importing `models` registers every table on it."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass
