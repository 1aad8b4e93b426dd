import { defineConfig } from 'vite';
import preact from '@preact/preset-vite';

// Built by `npm run build:web` (vite build web) into web/dist; served by Gatehouse at /console/.
export default defineConfig({
  root: import.meta.dirname,
  base: '/console/',
  plugins: [preact()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // No inline scripts or data: module preloads: the console's CSP allows only 'self'.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
  },
});
