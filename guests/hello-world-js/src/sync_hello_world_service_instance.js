// The tutorial's second sync step: defers, fails or greets.

import { Deferred, Failed, log } from "syncplane-sdk";
import { exportSyncStep } from "syncplane-sdk/sync";

import { HelloWorldService, HelloWorldServiceInstance } from "./models.js";

/** @type {import("syncplane-sdk").SyncStep<import("./models.js").HelloWorldServiceInstance>} */
const step = {
  syncRecord(o) {
    log.debug("HelloWorldServiceInstance has been updated!", { object: o, hello_to: o.hello_to });

    if (o.hello_to === "Tyrion Lannister") {
      throw new Deferred("Maybe later");
    }
    if (o.hello_to === "Joffrey Baratheon") {
      throw new Failed("Maybe not");
    }

    const owner = o.follow("owner", HelloWorldService);
    log.info(`${owner.hello_from} is saying hello to ${o.hello_to}`);
  },
  deleteRecord(o) {
    log.debug("HelloWorldServiceInstance has been deleted!", { object: o, hello_to: o.hello_to });
  },
};

export const { syncRecord, deleteRecord } = exportSyncStep(HelloWorldServiceInstance, step);
