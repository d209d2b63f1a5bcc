import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
describe("smoke", () => {
  it("reaches the durable object", async () => {
    const stub = env.RUN_COORDINATOR.get(env.RUN_COORDINATOR.newUniqueId());
    expect(await stub.ping()).toBe("pong");
  });
});
