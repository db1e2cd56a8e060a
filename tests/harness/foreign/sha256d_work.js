// Bitcoin header work for the foreign drivers: SHA256d, the coinbase and merkle root,
// the 80-byte header, the target of a (tiny) difficulty. The protocol code around it is
// the npm packages'; only the arithmetic a miner and a pool both need lives here.
'use strict';
const crypto = require('crypto');

const DIFF1 = 0x00000000ffff0000000000000000000000000000000000000000000000000000n;

const sha256d = (buf) =>
  crypto.createHash('sha256').update(crypto.createHash('sha256').update(buf).digest()).digest();

function swapWords(buf) {
  const out = Buffer.alloc(buf.length);
  for (let i = 0; i < buf.length; i += 4) for (let j = 0; j < 4; j++) out[i + j] = buf[i + 3 - j];
  return out;
}

function le32(n) {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

// job: {coinb1, coinb2, merkle_branch, version, prevhash, nbits} as mining.notify sends them
function headerPrefix(job, en1, en2, ntime) {
  let root = sha256d(Buffer.from(job.coinb1 + en1 + en2 + job.coinb2, 'hex'));
  for (const branch of job.merkle_branch) root = sha256d(Buffer.concat([root, Buffer.from(branch, 'hex')]));
  return Buffer.concat([
    le32(parseInt(job.version, 16)), swapWords(Buffer.from(job.prevhash, 'hex')), root,
    le32(parseInt(ntime, 16)), le32(parseInt(job.nbits, 16)),
  ]);
}

const hashValue = (header) => BigInt('0x' + Buffer.from(sha256d(header)).reverse().toString('hex'));
const targetOf = (difficulty) => BigInt(Math.floor(Number(DIFF1) / difficulty));

// the first nonce from `start` whose hash meets the target (or, meets=false, misses it)
function solve(prefix, difficulty, start, meets) {
  const target = targetOf(difficulty);
  for (let n = start >>> 0; ; n = (n + 1) >>> 0) {
    if ((hashValue(Buffer.concat([prefix, le32(n)])) <= target) === meets) return n;
  }
}

module.exports = { headerPrefix, hashValue, targetOf, solve, le32 };
