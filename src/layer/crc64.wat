;; CRC-64/ISO, slicing-by-8 (src/layer/crc64.ts loads the tables and copies data in).
;; Memory: tables 0..7 at k*2048 (256 little-endian i64 each; table k for byte 7-k of a word),
;; the data to hash at 16384.
(module
  (memory (export "memory") 17)
  (func (export "update") (param $len i32) (param $crc i64) (result i64)
    (local $p i32) (local $end8 i32) (local $end i32) (local $x i64)
    (local.set $p (i32.const 16384))
    (local.set $end (i32.add (i32.const 16384) (local.get $len)))
    (local.set $end8 (i32.sub (local.get $end) (i32.and (local.get $len) (i32.const 7))))
    (block $done8
      (loop $words
        (br_if $done8 (i32.ge_u (local.get $p) (local.get $end8)))
        (local.set $x (i64.xor (local.get $crc) (i64.load (local.get $p))))
        (local.set $crc
          (i64.xor (i64.xor (i64.xor (i64.xor (i64.xor (i64.xor (i64.xor (i64.load offset=14336 (i32.shl (i32.wrap_i64 (i64.and (local.get $x) (i64.const 255))) (i32.const 3)))
          (i64.load offset=12288 (i32.shl (i32.wrap_i64 (i64.and (i64.shr_u (local.get $x) (i64.const 8)) (i64.const 255))) (i32.const 3))))
          (i64.load offset=10240 (i32.shl (i32.wrap_i64 (i64.and (i64.shr_u (local.get $x) (i64.const 16)) (i64.const 255))) (i32.const 3))))
          (i64.load offset=8192 (i32.shl (i32.wrap_i64 (i64.and (i64.shr_u (local.get $x) (i64.const 24)) (i64.const 255))) (i32.const 3))))
          (i64.load offset=6144 (i32.shl (i32.wrap_i64 (i64.and (i64.shr_u (local.get $x) (i64.const 32)) (i64.const 255))) (i32.const 3))))
          (i64.load offset=4096 (i32.shl (i32.wrap_i64 (i64.and (i64.shr_u (local.get $x) (i64.const 40)) (i64.const 255))) (i32.const 3))))
          (i64.load offset=2048 (i32.shl (i32.wrap_i64 (i64.and (i64.shr_u (local.get $x) (i64.const 48)) (i64.const 255))) (i32.const 3))))
          (i64.load offset=0 (i32.shl (i32.wrap_i64 (i64.and (i64.shr_u (local.get $x) (i64.const 56)) (i64.const 255))) (i32.const 3)))))
        (local.set $p (i32.add (local.get $p) (i32.const 8)))
        (br $words)))
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
