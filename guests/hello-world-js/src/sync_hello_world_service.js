// Logs changes of HelloWorldService, as the tutorial's first sync step.

import { log } from "syncplane-sdk";
import { exportSyncStep } from "syncplane-sdk/sync";

import { HelloWorldService } from "./models.js";

/** @type {import("syncplane-sdk").SyncStep<import("./models.js").HelloWorldService>} */
const step = {
  syncRecord(o) {
    log.info("HelloWorldService has been updated!", { object: o, hello_from: o.hello_from });
  },
  deleteRecord(o) {
    log.info("HelloWorldService has been deleted!", { object: o, hello_from: o.hello_from });
  },
};

export const { syncRecord, deleteRecord } = exportSyncStep(HelloWorldService, step);
