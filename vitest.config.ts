import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: {
        // The API token exists only in tests; deployments set it with `wrangler secret put`.
        bindings: { API_TOKEN: "test-api-token", ALLOWED_TARGETS: "127.0.0.1:*,*.example.com,api.example.org" },
      },
    }),
  ],
  test: { include: ["test/**/*.test.ts"] },
});
