import { DurableObject } from "cloudflare:workers";
export class RunCoordinator extends DurableObject<Env> {
  ping(): string { return "pong"; }
}
