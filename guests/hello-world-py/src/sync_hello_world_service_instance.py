"""The tutorial's second sync step: defers, fails or greets."""

from models import HelloWorldService, HelloWorldServiceInstance
from syncplane import Deferred, Failed, SyncStep, export_sync_step, log


class SyncHelloWorldServiceInstance(SyncStep[HelloWorldServiceInstance]):
    model = HelloWorldServiceInstance

    def sync_record(self, o: HelloWorldServiceInstance) -> None:
        log.debug("HelloWorldServiceInstance has been updated!", object=o, hello_to=o.hello_to)

        if o.hello_to == "Tyrion Lannister":
            raise Deferred("Maybe later")
        if o.hello_to == "Joffrey Baratheon":
            raise Failed("Maybe not")

        owner = o.follow("owner", HelloWorldService)
        log.info(f"{owner.hello_from} is saying hello to {o.hello_to}")

    def delete_record(self, o: HelloWorldServiceInstance) -> None:
        log.debug("HelloWorldServiceInstance has been deleted!", object=o, hello_to=o.hello_to)


WitWorld = export_sync_step(SyncHelloWorldServiceInstance)
