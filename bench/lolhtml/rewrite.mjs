// lol-html (html-rewriter-wasm, the wasm build of the streaming rewriter
// behind Cloudflare's HTMLRewriter) doing the five rewrites of the rewrite
// package's benchmarks on the same page, for comparison with
// BenchmarkCompileRender (a page never seen before).
//
//   npm install && node rewrite.mjs [--seconds 3] [--out rewritten.html]
//
// It prints the mean time per rewrite of the whole page.
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { HTMLRewriter } from "html-rewriter-wasm";

const here = dirname(fileURLToPath(import.meta.url));
const pagePath = join(here, "../../rewrite/testdata/bench-page.html");
const page = readFileSync(pagePath);

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const seconds = Number(opt("--seconds", "3"));
const out = opt("--out", "");

// The same edits as benchEdits in rewrite/bench_test.go.
const html = { html: true };
const handlers = [
  ["#hero", (el) => el.replace(`<section id="hero" class="hero hero--vip"><h1>Welcome back, Jane</h1><p>Your size is back in stock: <a href="/p/shoe-42">Trail Shoe Model 42</a>.</p></section>`, html)],
  [".greeting", (el) => el.setInnerContent(`Welcome back, Jane!`, html)],
  [".cta", (el) => el.setInnerContent(`<a href="/guide">Read the buyer's guide</a>`, html)],
  ["footer .promo", (el) => el.remove()],
  ["#recommendations", (el) => el.append(`<article class="teaser"><h3><a href="/blog/ultra">Your first ultra</a></h3><p>Picked for runners like you.</p></article>`, html)],
];

async function rewrite() {
  const chunks = [];
  const rw = new HTMLRewriter((chunk) => chunks.push(chunk));
  for (const [sel, fn] of handlers) rw.on(sel, { element: fn });
  try {
    await rw.write(page);
    await rw.end();
  } finally {
    rw.free();
  }
  return Buffer.concat(chunks);
}

const first = await rewrite();
if (out) writeFileSync(out, first);
for (let i = 0; i < 20; i++) await rewrite(); // warm up

let n = 0;
const start = process.hrtime.bigint();
const deadline = start + BigInt(Math.round(seconds * 1e9));
let now = start;
while (now < deadline) {
  await rewrite();
  n++;
  now = process.hrtime.bigint();
}
const ns = Number(now - start) / n;
console.log(`lol-html (html-rewriter-wasm) ${page.length} bytes, 5 rewrites: ${(ns / 1e6).toFixed(3)} ms per rewrite (${n} runs, node ${process.version})`);
