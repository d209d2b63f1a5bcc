// Plain Node servers the end-to-end suites stand up as targets (the system's edge): on a
// free loopback port, closed with every connection they hold.

import type { Server } from "node:http";
import type { AddressInfo } from "node:net";

/** Listens on 127.0.0.1 at a free port and answers the port. */
export async function listenLocal(server: Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

/** Closes the server and every connection it holds (keep-alive ones included). */
export async function closeLocal(server: Server | null): Promise<void> {
  if (!server) return;
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}
