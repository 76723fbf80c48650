"""The hello-world service's models, shared by its two sync steps."""

from dataclasses import dataclass
from typing import ClassVar, Optional

from syncplane import Model


@dataclass(frozen=True)
class HelloWorldService(Model):
    """`HelloWorldService` from `models/hello-world.xproto`."""

    NAME: ClassVar[str] = "HelloWorldService"
    name: str
    hello_from: str


@dataclass(frozen=True)
class HelloWorldServiceInstance(Model):
    """`HelloWorldServiceInstance` from `models/hello-world.xproto`."""

    NAME: ClassVar[str] = "HelloWorldServiceInstance"
    hello_to: str
    name: Optional[str] = None
