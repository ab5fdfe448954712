// Measures frames shown ÷ fragments for the reference encoder and decoder
// of @ngraveio/bc-ur under random frame loss, with the same message shapes
// as Airlock's Go benchmark. Usage: node ur-bench.js K LOSS TRIALS
// Prints JSON {k, loss, trials, mean, p90, max}.
'use strict';
const { UR, UREncoder, URDecoder } = require('@ngraveio/bc-ur');

const [k, loss, trials] = process.argv.slice(2).map(Number);
const fragLen = 16;

// Small deterministic generator (mulberry32) for messages and losses.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ratios = [];
for (let trial = 0; trial < trials; trial++) {
  const r = rng(1000003 * k + trial);
  // k*fragLen-3 bytes wrap into a CBOR byte string of exactly k*fragLen.
  const message = Buffer.from([...new Array(k * fragLen - 3)].map(() => Math.floor(r() * 256)));
  const encoder = new UREncoder(UR.fromBuffer(message), fragLen, 0, 1);
  if (encoder.fragmentsLength !== k) throw new Error(`got ${encoder.fragmentsLength} fragments, want ${k}`);
  const decoder = new URDecoder();
  let shown = 0;
  while (!decoder.isComplete()) {
    const part = encoder.nextPart();
    shown++;
    if (r() < loss) continue;
    decoder.receivePart(part);
    if (shown > 1000 * k) throw new Error('not decoded');
  }
  if (!decoder.isSuccess() || !Buffer.from(decoder.resultUR().decodeCBOR()).equals(message)) throw new Error('wrong message');
  ratios.push(shown / k);
}
ratios.sort((a, b) => a - b);
const mean = ratios.reduce((a, b) => a + b, 0) / ratios.length;
process.stdout.write(JSON.stringify({ k, loss, trials, mean, p90: ratios[Math.floor(ratios.length * 0.9)], max: ratios[ratios.length - 1] }) + '\n');
