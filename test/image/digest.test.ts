import { test } from 'node:test';
import assert from 'node:assert/strict';
import { asDiffId, chainIdOf, chainIds, EMPTY_LAYER_DIFF_ID, sha256Digest } from '../../src/image/digest.js';

// The seeds' test-image (alpine + 3 layers): diffIDs and the layerdb directory names dockerd made.
const DIFF_IDS = [
  'sha256:7bff100f35cb359a368537bb07829b055fe8e0b1cb01085a3a628ae9c187c7b8',
  'sha256:b1ddbff022577cd249a074285a1a7eb76d7c9139132ba5aa4272fc115dfa9e36',
  'sha256:9edc93f4dcf640f272ed73f933863dbefae6719745093d09c6c6908f402b1c34',
  'sha256:a6c8828ba4b58628284f783d3c918ac379ae2aba0830f4c926a330842361ffb6',
].map(asDiffId);
const CHAIN_IDS = [
  'sha256:7bff100f35cb359a368537bb07829b055fe8e0b1cb01085a3a628ae9c187c7b8',
  'sha256:db7c15c2f03f63a658285a55edc0a0012ccd0033f4695d4b428b1b464637e655',
  'sha256:0e88764cdf90e8a5d6597b2d8e65b8f70e7b62982b0aee934195b54600320d47',
  'sha256:80fe1abae43103e3be54ac2813114d1dea6fc91454a3369104b8dd6e2b1363f5',
];

test('chainIDs reproduce the seeds’ layerdb names', () => {
  assert.deepEqual(chainIds(DIFF_IDS), CHAIN_IDS);
  assert.equal(chainIdOf(null, DIFF_IDS[0]!), CHAIN_IDS[0]);
  assert.equal(chainIdOf(chainIds(DIFF_IDS.slice(0, 1))[0]!, DIFF_IDS[1]!), CHAIN_IDS[1]);
});

test('the empty layer is 1024 zero bytes', () => {
  assert.equal(sha256Digest(Buffer.alloc(1024)), EMPTY_LAYER_DIFF_ID);
});
