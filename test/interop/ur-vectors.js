// Prints reference values from @ngraveio/bc-ur for Airlock's UR tests, as
// JSON on stdout: the Xoshiro "Wolf" stream, the reference test message
// makeMessage(256, "Wolf") and its first parts at max fragment length 30.
'use strict';
const { UR, UREncoder } = require('@ngraveio/bc-ur');
const Xoshiro = require('@ngraveio/bc-ur/dist/xoshiro').default;
const { chooseFragments } = require('@ngraveio/bc-ur/dist/fountainUtils');
const bytewords = require('@ngraveio/bc-ur/dist/bytewords').default;

function makeMessage(length, seed) {
  const rng = new Xoshiro(Buffer.from(seed));
  return Buffer.from(rng.nextData(length));
}

const rng = new Xoshiro(Buffer.from('Wolf'));
const rolls = [];
for (let i = 0; i < 100; i++) rolls.push(rng.next().mod(100).toNumber());

const message = makeMessage(256, 'Wolf');
const encoder = new UREncoder(UR.fromBuffer(message), 30, 0, 10);
const parts = [];
for (let i = 0; i < 30; i++) parts.push(encoder.nextPart());

const checksum = 0x12345678;
const fragments = [];
for (let seq = 1; seq <= 60; seq++) fragments.push(chooseFragments(seq, 11, checksum));

process.stdout.write(JSON.stringify({
  rolls,
  message: message.toString('hex'),
  parts,
  fragments,
  bytewordsStandard: bytewords.encode('000102' + '80ff', bytewords.STYLES.STANDARD),
  bytewordsMinimal: bytewords.encode('000102' + '80ff', bytewords.STYLES.MINIMAL),
}, null, 1) + '\n');
