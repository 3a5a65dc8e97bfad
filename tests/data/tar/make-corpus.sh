#!/usr/bin/env bash
# Regenerates the seed corpus for tests/fuzz/tar_reader_fuzz.cpp: small archives in every dialect the reader
# understands (GNU tar v7/ustar/oldgnu/gnu/posix, sparse old GNU and PAX 0.0/0.1/1.0, bsdtar, Python tarfile
# with global headers, base-256 ids and negative times, gzip). Output: the *.tar / *.tar.gz files next to it.
set -euo pipefail
out=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export LC_ALL=C.UTF-8 TZ=UTC
gnu=(tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@1700000000 -b1)

mkdir -p "$work/t/d/e" "$work/t/empty"
cd "$work/t"
printf 'hello\n' > d/a.txt
: > zero
printf 'x' > 'h\xc3\xa9llo'
ln d/a.txt hard
ln -s "$(printf 't%.0s' {1..120})" longlink
long="$(printf 'p%.0s' {1..60})/$(printf 'q%.0s' {1..70})"
mkdir -p "$(dirname "$long")"; printf 'long' > "$long"
chmod 4755 d/a.txt
cd "$work"
mkdir -p short/d && printf 'hi\n' > short/d/f && ln -s f short/d/l

"${gnu[@]}" --format=v7 -cf "$out/gnu-v7.tar" -C short .
cp -a t u && rm u/longlink # ustar holds 255-byte paths but no 120-byte link target
"${gnu[@]}" --format=ustar -cf "$out/gnu-ustar.tar" -C u .
"${gnu[@]}" --format=oldgnu -cf "$out/gnu-oldgnu.tar" -C t .
"${gnu[@]}" --format=gnu -cf "$out/gnu-gnu.tar" -C t .
"${gnu[@]}" --format=posix --pax-option=delete=atime,delete=ctime -cf "$out/gnu-posix.tar" -C t .
"${gnu[@]}" --format=posix -czf "$out/gnu-posix.tar.gz" -C short .

mkdir -p sp && truncate -s 40000 sp/s && printf abc | dd of=sp/s bs=1 seek=10000 conv=notrunc 2>/dev/null \
    && printf xyz | dd of=sp/s bs=1 seek=30000 conv=notrunc 2>/dev/null && truncate -s 5000 sp/hole
"${gnu[@]}" --sparse --format=oldgnu -cf "$out/sparse-oldgnu.tar" -C sp .
for v in 0.0 0.1 1.0; do
    "${gnu[@]}" --sparse --format=posix --sparse-version=$v -cf "$out/sparse-pax-$v.tar" -C sp .
done

if command -v bsdtar >/dev/null; then
    bsdtar --format=pax -cf "$out/bsdtar-pax.tar" -C t .
    bsdtar --format=gnutar -cf "$out/bsdtar-gnutar.tar" -C short .
fi

/usr/bin/python3 - "$out" <<'PY'
import io, sys, tarfile
out = sys.argv[1]
def member(t, name, data=b'', **kw):
    i = tarfile.TarInfo(name)
    i.size = len(data)
    i.mtime = 1700000000
    for k, v in kw.items():
        setattr(i, k, v)
    t.addfile(i, io.BytesIO(data))
with tarfile.open(out + '/py-pax-global.tar', 'w', format=tarfile.PAX_FORMAT,
                  pax_headers={'comment': 'global', 'uname': 'g'}) as t:
    member(t, 'a', b'x' * 600, pax_headers={'SCHILY.xattr.user.k': 'v'})
    member(t, 'neg', b'n', mtime=-1.5)
    member(t, 'sub\u00e9/' + 'n' * 200, b'long')
    member(t, 'bigid', b'', uid=10**10, gid=3000000, uname='u' * 40)
    member(t, 'dir', type=tarfile.DIRTYPE, mode=0o755)
    member(t, 'dev', type=tarfile.CHRTYPE, devmajor=1, devminor=3)
with tarfile.open(out + '/py-gnu-base256.tar', 'w', format=tarfile.GNU_FORMAT) as t:
    member(t, 'big', b'b', uid=10**12, gid=2**40)
    member(t, 'L' * 300, b'l', linkname='')
    member(t, 'sym', type=tarfile.SYMTYPE, linkname='K' * 300)
with tarfile.open(out + '/py-ustar.tar.gz', 'w:gz', format=tarfile.USTAR_FORMAT) as t:
    member(t, 'p' * 120 + '/f', b'prefix split')
PY
ls -l "$out"
