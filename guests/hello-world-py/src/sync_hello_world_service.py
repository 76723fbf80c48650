"""Logs changes of HelloWorldService, as the tutorial's first sync step."""

from models import HelloWorldService
from syncplane import SyncStep, export_sync_step, log


class SyncHelloWorldService(SyncStep[HelloWorldService]):
    model = HelloWorldService

    def sync_record(self, o: HelloWorldService) -> None:
        log.info("HelloWorldService has been updated!", object=o, hello_from=o.hello_from)

    def delete_record(self, o: HelloWorldService) -> None:
        log.info("HelloWorldService has been deleted!", object=o, hello_from=o.hello_from)


WitWorld = export_sync_step(SyncHelloWorldService)
