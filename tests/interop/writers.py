# SPDX-License-Identifier: MIT
"""Images laid out the way other VHD writers lay them out, written from
the specification and from what each writer is documented (or publicly
known) to do, independently of libvhd. Each build returns the flat disk
content it encodes, so tests compare what vhdfs reads against what was
put there.

Writer profiles (see PROFILES; sources in tests/interop/test_writers.sh):
  win2008  Hyper-V 2008 R2: "win " 6.1, BAT at 1536, W2ku + W2ru.
  win10    Windows 8+ / 10 / 11 diskpart, Hyper-V 2012+: "win " 10.0,
           BAT at 0x2000, data 4 KiB-aligned, W2ku space 4096 bytes,
           W2ru space 65536 bytes, parent timestamp 0, full Windows path
           as the parent unicode name.
  vpc      Virtual PC 2007: "vpc " 5.0, data space in sectors, Wi2r/Wi2k
           (plain bytes) beside W2ru/W2ku, current size = CHS size.
  d2v      Disk2VHD: "d2v ", current size authoritative.
  tap      blktap vhd-util: "tap\\0" 1.3, creator OS 0, size in whole
           2 MiB blocks, BAT sized for a larger -S size, a "tdbatmap"
           batmap after the BAT, locators MacX ("file://./x.vhd"), W2ku
           and W2ru all holding the *relative* path, data space in
           bytes, the "hidden" byte (footer offset 85).
  vbox     VirtualBox: "vbox", W2ku holding a POSIX absolute path,
           W2ru a bare relative name without ".\\", bare parent name.
"""
import os
import random
import struct
import uuid

SECTOR = 512
EPOCH = 946684800
FIXED, DYNAMIC, DIFF = 2, 3, 4

W2RU, W2KU, MACX, WI2R, WI2K = b'W2ru', b'W2ku', b'MacX', b'Wi2r', b'Wi2k'

PROFILES = {
    'win2008': dict(creator=b'win ', cver=0x00060001, cos=b'Wi2k',
                    bat_off=1536, align=512),
    'win10': dict(creator=b'win ', cver=0x000a0000, cos=b'Wi2k',
                  bat_off=0x2000, align=4096),
    'vpc': dict(creator=b'vpc ', cver=0x00050000, cos=b'Wi2k',
                bat_off=1536, align=512),
    'd2v': dict(creator=b'd2v ', cver=0x00020000, cos=b'Wi2k',
                bat_off=1536, align=512),
    'tap': dict(creator=b'tap\0', cver=0x00010003, cos=b'\0\0\0\0',
                bat_off=1536, align=512),
    'vbox': dict(creator=b'vbox', cver=0x00060001, cos=b'Wi2k',
                 bat_off=1536, align=512),
}


def csum(buf, off):
    b = bytearray(buf)
    b[off:off + 4] = b'\0\0\0\0'
    return (~sum(b)) & 0xFFFFFFFF


def chs(size):
    """(cylinders, heads, sectors) by the specification's appendix."""
    total = min(size // SECTOR, 65535 * 16 * 255)
    if total >= 65535 * 16 * 63:
        spt, heads = 255, 16
        cth = total // spt
    else:
        spt = 17
        cth = total // spt
        heads = max(4, (cth + 1023) // 1024)
        if cth >= heads * 1024 or heads > 16:
            spt, heads = 31, 16
            cth = total // spt
        if cth >= heads * 1024:
            spt, heads = 63, 16
            cth = total // spt
    return cth // heads, heads, spt


def footer(p, dtype, size, uid, orig=None, data_offset=None, saved=0,
           hidden=0, geometry=None, stale_hidden=False):
    f = bytearray(512)
    if data_offset is None:
        data_offset = (1 << 64) - 1 if dtype == FIXED else 512
    c, h, s = geometry or chs(size)
    struct.pack_into('>8sIIQI4sI4sQQHBBI', f, 0, b'conectix', 2, 0x10000,
                     data_offset, 0x2a5b7c00, p['creator'], p['cver'],
                     p['cos'], size if orig is None else orig, size, c, h,
                     s, dtype)
    f[68:84] = uid
    f[84] = saved
    f[85] = 0 if stale_hidden else hidden
    struct.pack_into('>I', f, 64, csum(f, 64))
    f[85] = hidden  # blktap 1.1 set it after the checksum
    return f


def fixed(path, p, data, short_footer=False, **kw):
    """Fixed disk: the data, then the footer; no copy at offset 0."""
    uid = uuid.uuid4().bytes
    f = footer(p, FIXED, len(data), uid, **kw)
    with open(path, 'wb') as o:
        o.write(data)
        o.write(f[:511] if short_footer else f)
    return uid


def utf16le(s):
    return s.encode('utf-16-le')


def sparse(path, p, size, blocks, bs=2 << 20, parent=None, locators=(),
           uname=None, pts=None, extra_entries=0, batmap=False,
           short_footer=False, order=None, **kw):
    """Dynamic (parent None) or differencing disk.

    blocks: {index: (bitmap bytes, data of bs bytes)}, written in @order.
    locators: (code, payload bytes, data space, in sectors?).
    parent: (path, flat bytes) of the parent; returns (uuid, flat).
    """
    dtype = DIFF if parent else DYNAMIC
    uid = uuid.uuid4().bytes
    mte = (size + bs - 1) // bs + extra_entries
    bat_off, align = p['bat_off'], p['align']
    h = bytearray(1024)
    struct.pack_into('>8sQQIII', h, 0, b'cxsparse', (1 << 64) - 1,
                     bat_off, 0x10000, mte, bs)
    body = {}
    bat = [0xFFFFFFFF] * mte
    pos = bat_off + (mte * 4 + 511) // 512 * 512
    if batmap:
        # blktap: header sector after the BAT, then one bit per block.
        nsec = ((mte + 7) // 8 + 511) // 512
        full = bytearray(nsec * 512)
        for i, (bits, _) in blocks.items():
            if all(b == 0xff for b in bits[:bs // SECTOR // 8]) and \
                    len(bits) >= bs // SECTOR // 8:
                full[i // 8] |= 0x80 >> (i % 8)
        mh = bytearray(512)
        map_bytes = ((size >> 24) + 511) // 512 * 512 or 512
        struct.pack_into('>8sQIII', mh, 0, b'tdbatmap', pos + 512, nsec,
                         0x00010002, (~sum(full[:map_bytes])) & 0xFFFFFFFF)
        body[pos] = bytes(mh) + bytes(full)
        pos += 512 + nsec * 512
    if dtype == DIFF:
        pf = open(parent[0], 'rb').read()
        pfoot = pf[-512:] if pf[-512:-504] == b'conectix' else \
            pf[-511:] + b'\0'
        h[40:56] = pfoot[68:84]
        if pts is None:
            pts = int(os.stat(parent[0]).st_mtime) - EPOCH
        struct.pack_into('>I', h, 56, pts)
        if uname is not None:
            h[64:64 + len(uname)] = uname
        for i, (code, pay, room, sectors) in enumerate(locators):
            pos = (pos + align - 1) // align * align
            struct.pack_into('>4sIIIQ', h, 576 + 24 * i, code,
                             room // 512 if sectors else room, len(pay), 0,
                             pos)
            body[pos] = pay + b'\0' * (room - len(pay))
            pos += room
    struct.pack_into('>I', h, 36, csum(h, 36))
    bmsize = (bs // SECTOR // 8 + 511) // 512 * 512
    flat = bytearray(parent[1]) if parent else bytearray(size)
    flat = flat[:size] + bytearray(max(0, size - len(flat)))
    for i in (order or sorted(blocks)):
        bits, data = blocks[i]
        dpos = (pos + bmsize + align - 1) // align * align
        bat[i] = (dpos - bmsize) // 512
        body[dpos - bmsize] = bytes(bits) + b'\0' * (bmsize - len(bits))
        body[dpos] = data
        pos = dpos + bs
        for s in range(bs // SECTOR):
            off = i * bs + s * SECTOR
            if s // 8 < len(bits) and bits[s // 8] & (0x80 >> (s % 8)) \
                    and off < size:
                flat[off:off + SECTOR] = data[s * SECTOR:(s + 1) * SECTOR]
    body[bat_off] = struct.pack('>%dI' % mte, *bat)
    f = footer(p, dtype, size, uid, **kw)
    with open(path, 'wb') as o:
        o.write(f)
        o.seek(512)
        o.write(h)
        for off in sorted(body):
            o.seek(off)
            o.write(body[off])
        o.seek(pos)
        o.write(f[:511] if short_footer else f)
    return uid, bytes(flat)


def rnd(seed, n):
    return random.Random(seed).randbytes(n)


def block(seed, bs, bits, garbage=False):
    """A block whose data is random where @bits are set and zero (or, for
    differencing disks, garbage that must never be read) elsewhere."""
    data = bytearray(rnd(seed, bs))
    if not garbage:
        for s in range(bs // SECTOR):
            if not (s // 8 < len(bits) and bits[s // 8] & (0x80 >> (s % 8))):
                data[s * SECTOR:(s + 1) * SECTOR] = bytes(SECTOR)
    return (bytes(bits), bytes(data))


def full(bs):
    return bytes([0xff]) * (bs // SECTOR // 8)


def runs(bs, *ranges):
    """Bitmap with whole bytes (8 sectors = 4 KiB) set for each [a, b)."""
    bits = bytearray(bs // SECTOR // 8)
    for a, b in ranges:
        for i in range(a, b):
            bits[i] = 0xff
    return bytes(bits)
