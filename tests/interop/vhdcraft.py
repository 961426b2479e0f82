# SPDX-License-Identifier: MIT
"""Test-only VHD writer of the interop scripts, written from the
specification independently of libvhd: builds differencing images the way
other writers lay them out (BAT away from 1536, 4 KiB-aligned data, chosen
locators, data space in bytes or sectors) and appends blocks with any
bitmap, so scripts can check what we read against what was put there."""
import os
import struct
import uuid

W2RU, W2KU = b'W2ru', b'W2ku'


def checksum(buf, off):
    b = bytearray(buf)
    b[off:off + 4] = b'\0\0\0\0'
    return (~sum(b)) & 0xFFFFFFFF


def read_footer(path):
    with open(path, 'rb') as f:
        f.seek(-512, os.SEEK_END)
        return bytearray(f.read(512))


def fix_footer(f):
    struct.pack_into('>I', f, 64, checksum(f, 64))
    return f


def fix_header(h):
    struct.pack_into('>I', h, 36, checksum(h, 36))
    return h


def make_diff(path, parent, bs=2 << 20, bat_off=1536, align=512,
              locators=(), uname=None, space_sectors=False, ts=None):
    """Empty differencing image over @parent. locators: (code, text)."""
    pf = read_footer(parent)
    size = struct.unpack_from('>Q', pf, 48)[0]
    mte = (size + bs - 1) // bs
    f = bytearray(512)
    f[0:8] = b'conectix'
    struct.pack_into('>IIQI4sI4sQQII', f, 8, 2, 0x10000, 512, 0,
                     b'vhdc', 0x10000, b'Wi2k', size, size,
                     struct.unpack_from('>I', pf, 56)[0], 4)
    f[68:84] = uuid.uuid4().bytes
    fix_footer(f)
    h = bytearray(1024)
    h[0:8] = b'cxsparse'
    struct.pack_into('>QQIII', h, 8, (1 << 64) - 1, bat_off, 0x10000, mte,
                     bs)
    h[40:56] = pf[68:84]
    if ts is None:
        ts = int(os.stat(parent).st_mtime) - 946684800
    struct.pack_into('>I', h, 56, ts)
    if uname:
        nm = uname.encode('utf-16-be')
        h[64:64 + len(nm)] = nm
    bat = b'\xff' * (((mte * 4 + 511) // 512) * 512)
    pos = bat_off + len(bat)
    body = {bat_off: bat}
    for i, (code, text) in enumerate(locators):
        pay = text.encode('utf-16-le')
        pos = (pos + align - 1) // align * align
        room = max(512, (len(pay) + 511) // 512 * 512)
        struct.pack_into('>4sIIIQ', h, 576 + 24 * i, code,
                         room // 512 if space_sectors else room, len(pay),
                         0, pos)
        body[pos] = pay + b'\0' * (room - len(pay))
        pos += room
    fix_header(h)
    with open(path, 'wb') as o:
        o.write(f)
        o.write(h)
        for off in sorted(body):
            o.seek(off)
            o.write(body[off])
        o.seek(pos)
        o.write(f)


def layout(path):
    f = read_footer(path)
    with open(path, 'rb') as i:
        i.seek(struct.unpack_from('>Q', f, 16)[0])
        h = i.read(1024)
    table, = struct.unpack_from('>Q', h, 16)
    mte, bs = struct.unpack_from('>II', h, 28)
    return table, mte, bs, ((bs // 512 // 8 + 511) // 512) * 512


def append_block(path, blk, bitmap, data, align=512):
    """Allocate block @blk at the end: @bitmap (bytes, padded with zeros)
    and @data (block_size bytes); BAT updated, footer moved."""
    table, mte, bs, bmsize = layout(path)
    assert blk < mte and len(data) == bs
    size = os.path.getsize(path)
    with open(path, 'r+b') as o:
        o.seek(size - 512)
        footer = o.read(512)
        end = size - 512
        data_pos = (end + bmsize + align - 1) // align * align
        bm_pos = data_pos - bmsize
        o.seek(end)
        o.write(b'\0' * (bm_pos - end))
        o.write(bytes(bitmap) + b'\0' * (bmsize - len(bitmap)))
        o.write(data)
        o.write(footer)
        o.seek(table + 4 * blk)
        o.write(struct.pack('>I', bm_pos // 512))


def apply_block(flat, blk, bs, bitmap, data):
    """The flat image after a differencing block with @bitmap over it."""
    for s in range(bs // 512):
        if s // 8 < len(bitmap) and bitmap[s // 8] & (0x80 >> (s % 8)):
            off = blk * bs + s * 512
            if off < len(flat):
                flat[off:off + 512] = data[s * 512:s * 512 + 512]
