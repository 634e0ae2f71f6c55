;; CRC-64/ISO, slicing-by-16 (src/layer/crc64.ts builds the tables into the memory it passes in).
;; Memory (imported, shared: a CRC thread reads file data straight into it): tables 0..15 at k*2048
;; (256 little-endian i64 each; table k for byte 15-k of a 16-byte block); data anywhere after 32768.
(module
  (import "env" "memory" (memory 1 65536 shared))
  (func (export "update") (param $p i32) (param $len i32) (param $crc i64) (result i64)
    (local $end16 i32) (local $end i32) (local $a i64) (local $b i64)
    (local.set $end (i32.add (local.get $p) (local.get $len)))
    (local.set $end16 (i32.sub (local.get $end) (i32.and (local.get $len) (i32.const 15))))
    (block $done16
      (loop $blocks
        (br_if $done16 (i32.ge_u (local.get $p) (local.get $end16)))
        (local.set $a (i64.xor (local.get $crc) (i64.load (local.get $p))))
        (local.set $b (i64.load offset=8 (local.get $p)))
        (local.set $crc
          (i64.xor (i64.xor (i64.xor (i64.xor (i64.xor (i64.xor (i64.xor (i64.xor (i64.xor (i64.xor (i64.xor (i64.xor (i64.xor (i64.xor (i64.xor (i64.load offset=30720 (i32.shl (i32.wrap_i64 (i64.and (local.get $a) (i64.const 255))) (i32.const 3)))
          (i64.load offset=28672 (i32.shl (i32.wrap_i64 (i64.and (i64.shr_u (local.get $a) (i64.const 8)) (i64.const 255))) (i32.const 3))))
          (i64.load offset=26624 (i32.shl (i32.wrap_i64 (i64.and (i64.shr_u (local.get $a) (i64.const 16)) (i64.const 255))) (i32.const 3))))
          (i64.load offset=24576 (i32.shl (i32.wrap_i64 (i64.and (i64.shr_u (local.get $a) (i64.const 24)) (i64.const 255))) (i32.const 3))))
          (i64.load offset=22528 (i32.shl (i32.wrap_i64 (i64.and (i64.shr_u (local.get $a) (i64.const 32)) (i64.const 255))) (i32.const 3))))
          (i64.load offset=20480 (i32.shl (i32.wrap_i64 (i64.and (i64.shr_u (local.get $a) (i64.const 40)) (i64.const 255))) (i32.const 3))))
          (i64.load offset=18432 (i32.shl (i32.wrap_i64 (i64.and (i64.shr_u (local.get $a) (i64.const 48)) (i64.const 255))) (i32.const 3))))
          (i64.load offset=16384 (i32.shl (i32.wrap_i64 (i64.shr_u (local.get $a) (i64.const 56))) (i32.const 3))))
          (i64.load offset=14336 (i32.shl (i32.wrap_i64 (i64.and (local.get $b) (i64.const 255))) (i32.const 3))))
          (i64.load offset=12288 (i32.shl (i32.wrap_i64 (i64.and (i64.shr_u (local.get $b) (i64.const 8)) (i64.const 255))) (i32.const 3))))
          (i64.load offset=10240 (i32.shl (i32.wrap_i64 (i64.and (i64.shr_u (local.get $b) (i64.const 16)) (i64.const 255))) (i32.const 3))))
          (i64.load offset=8192 (i32.shl (i32.wrap_i64 (i64.and (i64.shr_u (local.get $b) (i64.const 24)) (i64.const 255))) (i32.const 3))))
          (i64.load offset=6144 (i32.shl (i32.wrap_i64 (i64.and (i64.shr_u (local.get $b) (i64.const 32)) (i64.const 255))) (i32.const 3))))
          (i64.load offset=4096 (i32.shl (i32.wrap_i64 (i64.and (i64.shr_u (local.get $b) (i64.const 40)) (i64.const 255))) (i32.const 3))))
          (i64.load offset=2048 (i32.shl (i32.wrap_i64 (i64.and (i64.shr_u (local.get $b) (i64.const 48)) (i64.const 255))) (i32.const 3))))
          (i64.load offset=0 (i32.shl (i32.wrap_i64 (i64.shr_u (local.get $b) (i64.const 56))) (i32.const 3)))))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (br $blocks)))
    (block $done
      (loop $bytes
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $crc
          (i64.xor
            (i64.load (i32.shl (i32.wrap_i64 (i64.and (i64.xor (local.get $crc) (i64.load8_u (local.get $p))) (i64.const 255))) (i32.const 3)))
            (i64.shr_u (local.get $crc) (i64.const 8))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $bytes)))
    (local.get $crc)))
