import { defineConfig } from "vite";

// The window loads the built files from ui/dist (tauri.conf.json: build.frontendDist).
// No dev server is configured for the app; `npm run dev` serves the UI for a browser with the
// test harness (tests/ui/harness.html) for working on screens without the Rust side.
export default defineConfig({
  clearScreen: false,
  server: { host: "127.0.0.1", strictPort: false },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "safari15",
    sourcemap: false,
  },
});
