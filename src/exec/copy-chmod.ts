/**
 * `--chmod` for COPY/ADD (a BuildKit flag; the classic builder refuses it, tsbuild applies it to
 * every file and directory it copies, after ownership). Octal (`755`, `0644`) sets the permission
 * bits exactly; symbolic (`u+x,g-w,o=r`, `a+X`, `go=u`) works like chmod(1) with no umask: an
 * empty "who" means all.
 */
import { TsbuildError } from '../errors.js';

export type ChmodFn = (mode: number, isDir: boolean) => number;

const OCTAL = /^[0-7]{3,4}$/;
const CLAUSE = /^([ugoa]*)([-+=])([rwxXst]*|[ugo])$/;

function whoMask(who: string): number {
  if (who === '' || who.includes('a')) return 0o7777;
  let m = 0;
  if (who.includes('u')) m |= 0o4700;
  if (who.includes('g')) m |= 0o2070;
  if (who.includes('o')) m |= 0o1007;
  return m;
}

/** Parse a --chmod value into a function from the current mode (07777 bits) to the new one. */
export function parseChmod(spec: string): ChmodFn {
  if (OCTAL.test(spec)) {
    const v = parseInt(spec, 8);
    return () => v;
  }
  const clauses = spec.split(',').map((c) => {
    const m = CLAUSE.exec(c);
    if (m === null) throw new TsbuildError('COPY', `invalid chmod parameter: ${spec}`);
    return { who: m[1] as string, op: m[2] as string, perms: m[3] as string };
  });
  return (mode: number, isDir: boolean): number => {
    let cur = mode & 0o7777;
    for (const { who, op, perms } of clauses) {
      const mask = whoMask(who);
      let bits = 0;
      if (perms === 'u' || perms === 'g' || perms === 'o') {
        const shift = perms === 'u' ? 6 : perms === 'g' ? 3 : 0;
        const rwx = (cur >> shift) & 0o7;
        bits = (rwx << 6) | (rwx << 3) | rwx;
      } else {
        for (const p of perms) {
          if (p === 'r') bits |= 0o444;
          else if (p === 'w') bits |= 0o222;
          else if (p === 'x') bits |= 0o111;
          else if (p === 'X') bits |= isDir || (cur & 0o111) !== 0 ? 0o111 : 0;
          else if (p === 's') bits |= 0o6000;
          else if (p === 't') bits |= 0o1000;
        }
      }
      bits &= mask;
      if (op === '+') cur |= bits;
      else if (op === '-') cur &= ~bits;
      else cur = (cur & ~mask) | bits;
    }
    return cur & 0o7777;
  };
}
