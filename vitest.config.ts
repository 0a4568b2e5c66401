import { defineConfig } from "vitest/config";

// Workspace packages resolve to their TypeScript sources in tests (the `ferryvm-source`
// export condition), so tests never run stale dist/ builds. Vitest 4 runs tests in the SSR
// environment, which has its own resolve conditions.
// Setting conditions replaces Vite's defaults, so they are repeated after ours.
const source = "ferryvm-source";

export default defineConfig({
  resolve: { conditions: [source, "module", "browser", "development|production"] },
  ssr: { resolve: { conditions: [source, "module", "node", "development|production"] } },
  test: {
    include: ["packages/*/src/**/*.test.ts", "apps/*/src/**/*.test.ts", "guests/**/*.test.ts"],
    testTimeout: 30_000,
    pool: "forks",
  },
});
