/** A valid baseline JPEG-shaped photo of about `bytes` bytes (distinct per `seed`), as a camera would hand the app. */
export function syntheticJpeg(bytes: number, seed: number): Uint8Array {
  const segment = (marker: number, body: readonly number[]): number[] => [0xff, marker, ((body.length + 2) >> 8) & 0xff, (body.length + 2) & 0xff, ...body];
  const head = [
    0xff, 0xd8,
    ...segment(0xe0, [0x4a, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0]),
    ...segment(0xdb, [0, ...Array.from({ length: 64 }, (_, i) => i + 1)]),
    ...segment(0xc0, [8, 0, 16, 0, 16, 1, 1, 0x11, 0]),
    ...segment(0xc4, [0, ...Array.from({ length: 16 }, () => 0), 0]),
    ...segment(0xda, [1, 1, 0, 0, 63, 0]),
  ];
  const scanLength = Math.max(16, bytes - head.length - 2);
  const out = new Uint8Array(head.length + scanLength + 2);
  out.set(head, 0);
  // Entropy-coded data never holds 0xFF unstuffed: keep every scan byte even (≤ 0xFE).
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < scanLength; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[head.length + i] = (x >>> 0) & 0xfe;
  }
  out[out.length - 2] = 0xff;
  out[out.length - 1] = 0xd9;
  return out;
}
