// The hello-world service's models, shared by its two sync steps; their
// types are in models.d.ts.

import { model } from "syncplane-sdk";

/** `HelloWorldService` from `models/hello-world.xproto`. */
export const HelloWorldService = model("HelloWorldService", {
  fields: {
    name: { type: "string", required: true },
    hello_from: { type: "string", required: true },
  },
});

/** `HelloWorldServiceInstance` from `models/hello-world.xproto`. */
export const HelloWorldServiceInstance = model("HelloWorldServiceInstance", {
  fields: {
    name: { type: "string" },
    hello_to: { type: "string", required: true },
  },
});
