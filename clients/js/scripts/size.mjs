// Library size: the browser build (src/browser.js + src/core.js, what a page loads) and the
// Node.js build (src/node.js + core + ws-codec), each minified with terser and gzipped (-9).
import fs from 'node:fs';
import zlib from 'node:zlib';
import { minify } from 'terser';

const read = (f) => fs.readFileSync(new URL(`../src/${f}`, import.meta.url), 'utf8');
// One module per build: imports between the library's own files are dropped.
const bundle = (files) => files.map((f) => read(f).replace(/^import .* from '\.\/.*';$/mg, '')
  .replace(/^export \* from '\.\/.*';$/mg, '')).join('\n');
for (const [name, files] of [['browser', ['core.js', 'browser.js']], ['node', ['core.js', 'ws-codec.js', 'node.js']]]) {
  const src = bundle(files);
  const min = (await minify(src, { module: true, compress: true, mangle: true })).code;
  const gz = zlib.gzipSync(min, { level: 9 }).length;
  console.log(`${name}: ${Buffer.byteLength(src)} bytes source, ${Buffer.byteLength(min)} minified, ${gz} minified+gzipped`);
}
