# SPDX-License-Identifier: MIT
"""Test-only VHDX writer of the interop scripts, written from the MS-VHDX
specification independently of libvhd. qemu cannot make differencing VHDX
images, so this builds them over a qemu-made parent (locator keys as the
v2 image service writes them, lower-case parent_linkage = the parent's
DataWriteGuid) with chosen block states, and it can leave a crashed
writer's log entry (one BAT sector) in an image so scripts can check the
replay. Usage:

  vhdxcraft.py diff CHILD PARENT [--block-size N] [--sector 512|4096]
               [--write OFF:FILE:SKIP:LEN]... [--state BLOCK:STATE]...
               [--linkage GUID] [--relative PATH]
  vhdxcraft.py log IMAGE BLOCK FILE:SKIP   (block data at end of file,
               the BAT entry only in a log entry; the BAT itself unchanged)
  vhdxcraft.py sector IMAGE 4096          (set the logical and physical
               sector size of a small qemu-made image: qemu makes only 512,
               and while every block is in chunk 0 the BAT is the same)
  vhdxcraft.py info IMAGE                  (DataWriteGuid, size, sectors)
"""
import os
import struct
import sys
import uuid

MIB = 1 << 20
G_BAT = uuid.UUID('2DC27766-F623-4200-9D64-115E9BFD4A08').bytes_le
G_META = uuid.UUID('8B7CA206-4790-4B9A-B8FE-575F050F886E').bytes_le
G_PARAMS = uuid.UUID('CAA16737-FA36-4D43-B3B6-33F0AA44E76B').bytes_le
G_SIZE = uuid.UUID('2FA54224-CD1B-4876-B211-5DBED83BF4B8').bytes_le
G_ID = uuid.UUID('BECA12AB-B2E6-4523-93EF-C309E000C746').bytes_le
G_LSS = uuid.UUID('8141BF1D-A96F-4709-BA47-F233A8FAAB5F').bytes_le
G_PSS = uuid.UUID('CDA348C7-445D-4471-9CC9-E9885251C556').bytes_le
G_LOC = uuid.UUID('A8D35F2D-B30B-454D-ABF7-D3D84834AB0C').bytes_le
G_LOCTYPE = uuid.UUID('B04AEFB7-D19E-4A81-B789-25B8E9445913').bytes_le


def _crc_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


_T = _crc_table()


def crc32c(buf):
    c = 0xFFFFFFFF
    for b in buf:
        c = _T[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def with_crc(buf, off=4):
    b = bytearray(buf)
    b[off:off + 4] = b'\0\0\0\0'
    struct.pack_into('<I', b, off, crc32c(bytes(b)))
    return b


def pread(f, n, off):
    f.seek(off)
    return f.read(n)


def current_header(f):
    """(slot offset, header bytes) of the valid header with the larger
    sequence number."""
    best = None
    for off in (64 * 1024, 128 * 1024):
        h = bytearray(pread(f, 4096, off))
        if h[:4] != b'head' or bytes(with_crc(h)) != bytes(h):
            continue
        seq = struct.unpack_from('<Q', h, 8)[0]
        if best is None or seq > best[0]:
            best = (seq, off, h)
    if best is None:
        sys.exit('vhdxcraft: no valid header')
    return best[1], best[2]


def regions(f):
    r = pread(f, 65536, 192 * 1024)
    n = struct.unpack_from('<I', r, 8)[0]
    out = {}
    for i in range(n):
        e = r[16 + 32 * i:48 + 32 * i]
        out[bytes(e[:16])] = struct.unpack_from('<QI', e, 16)
    return out


def metadata(f):
    off, _ = regions(f)[G_META]
    t = pread(f, 65536, off)
    n = struct.unpack_from('<H', t, 10)[0]
    items = {}
    for i in range(n):
        e = t[32 + 32 * i:64 + 32 * i]
        ioff, ilen = struct.unpack_from('<II', e, 16)
        items[bytes(e[:16])] = pread(f, ilen, off + ioff)
    bs, flags = struct.unpack('<II', items[G_PARAMS][:8])
    return {
        'block_size': bs,
        'has_parent': bool(flags & 2),
        'size': struct.unpack('<Q', items[G_SIZE][:8])[0],
        'lss': struct.unpack('<I', items[G_LSS][:4])[0],
        'pss': struct.unpack('<I', items[G_PSS][:4])[0],
        'id': items[G_ID][:16],
    }


def info(path):
    with open(path, 'rb') as f:
        _, h = current_header(f)
        m = metadata(f)
    guid = uuid.UUID(bytes_le=bytes(h[32:48]))
    return guid, m


def header(seq, data_write, log_guid=b'\0' * 16):
    h = bytearray(4096)
    h[:4] = b'head'
    struct.pack_into('<Q', h, 8, seq)
    h[16:32] = uuid.uuid4().bytes_le
    h[32:48] = data_write
    h[48:64] = log_guid
    struct.pack_into('<HHIQ', h, 64, 0, 1, MIB, MIB)
    return with_crc(h)


def utf16(s):
    return s.encode('utf-16-le')


def locator(pairs):
    n = len(pairs)
    head = bytearray(20 + 12 * n)
    head[:16] = G_LOCTYPE
    struct.pack_into('<H', head, 18, n)
    blob = bytearray()
    base = len(head)
    for i, (k, v) in enumerate(pairs):
        kb, vb = utf16(k), utf16(v)
        ko = base + len(blob)
        blob += kb
        vo = base + len(blob)
        blob += vb
        struct.pack_into('<IIHH', head, 20 + 12 * i, ko, vo, len(kb), len(vb))
    return bytes(head + blob)


def chunk_ratio(lss, bs):
    return (1 << 23) * lss // bs


def make_diff(child, parent, block_size=2 * MIB, writes=(), states=None,
              linkage=None, relative=None):
    pguid, pm = info(parent)
    size, lss, pss = pm['size'], pm['lss'], pm['pss']
    bs = block_size
    ratio = chunk_ratio(lss, bs)
    nblocks = (size + bs - 1) // bs
    nchunks = (nblocks + ratio - 1) // ratio
    entries = nchunks * (ratio + 1)
    bat_len = (entries * 8 + MIB - 1) // MIB * MIB
    log_off, meta_off, bat_off = MIB, 2 * MIB, 3 * MIB
    data_off = bat_off + bat_len
    spb = bs // lss

    # content and sector presence per block
    blocks = {}
    for off, data in writes:
        assert off % lss == 0 and len(data) % lss == 0
        pos = 0
        while pos < len(data):
            b, inb = divmod(off + pos, bs)
            n = min(bs - inb, len(data) - pos)
            buf, present = blocks.setdefault(b, (bytearray(bs), set()))
            buf[inb:inb + n] = data[pos:pos + n]
            present.update(range(inb // lss, (inb + n) // lss))
            pos += n

    bat = [0] * entries
    out = bytearray()  # payload area from data_off
    sbs = {}
    for b in sorted(blocks):
        buf, present = blocks[b]
        where = data_off + len(out)
        out += buf
        full = len(present) == spb
        bat[b + b // ratio] = where | (6 if full else 7)
        if not full:
            c = b // ratio
            sb = sbs.setdefault(c, bytearray(MIB))
            first = (b % ratio) * spb
            for s in present:
                k = first + s
                sb[k // 8] |= 1 << (k % 8)
    for c in sorted(sbs):
        where = data_off + len(out)
        out += sbs[c]
        bat[c * (ratio + 1) + ratio] = where | 6
    for b, st in (states or {}).items():
        bat[b + b // ratio] = st

    link = linkage or '{%s}' % str(pguid).lower()
    rel = relative or '.\\' + os.path.basename(parent)
    pname = os.path.basename(parent)
    loc = locator([
        ('parent_linkage', link),
        ('relative_path', rel),
        ('volume_path', '\\\\?\\Volume{0b6a6e33-0000-0000-0000-100000000000}'
         '\\vms\\' + pname),
        ('absolute_win32_path', '\\\\?\\C:\\vms\\' + pname),
    ])
    items = [
        (G_PARAMS, 4, struct.pack('<II', bs, 2)),
        (G_SIZE, 6, struct.pack('<Q', size)),
        (G_ID, 6, pm['id']),
        (G_LSS, 6, struct.pack('<I', lss)),
        (G_PSS, 6, struct.pack('<I', pss)),
        (G_LOC, 4, loc),
    ]
    meta = bytearray(MIB)
    meta[:8] = b'metadata'
    struct.pack_into('<H', meta, 10, len(items))
    ioff = 65536
    for i, (g, flags, data) in enumerate(items):
        e = 32 + 32 * i
        meta[e:e + 16] = g
        struct.pack_into('<III', meta, e + 16, ioff, len(data), flags)
        meta[ioff:ioff + len(data)] = data
        ioff += len(data)

    reg = bytearray(65536)
    reg[:4] = b'regi'
    struct.pack_into('<I', reg, 8, 2)
    reg[16:32] = G_BAT
    struct.pack_into('<QII', reg, 32, bat_off, bat_len, 1)
    reg[48:64] = G_META
    struct.pack_into('<QII', reg, 64, meta_off, MIB, 1)
    reg = with_crc(reg)

    ident = bytearray(65536)
    ident[:8] = b'vhdxfile'
    c = utf16('vhdxcraft')
    ident[8:8 + len(c)] = c
    dw = uuid.uuid4().bytes_le
    with open(child, 'xb') as f:
        f.write(ident)
        f.write(header(1, dw))
        f.seek(128 * 1024)
        f.write(header(2, dw))
        f.seek(192 * 1024)
        f.write(reg)
        f.write(reg)
        f.seek(meta_off)
        f.write(meta)
        f.seek(bat_off)
        f.write(b''.join(struct.pack('<Q', e) for e in bat))
        f.seek(data_off)
        f.write(out)
        f.truncate(data_off + len(out))


def add_logged_block(path, block, data):
    """Append block data at the end of the file; put the BAT sector that
    maps it (state FULLY_PRESENT) only into a log entry, as a writer that
    crashed after logging but before the in-place BAT write leaves it."""
    with open(path, 'r+b') as f:
        hoff, h = current_header(f)
        m = metadata(f)
        bat_off, _ = regions(f)[G_BAT]
        bs = m['block_size']
        ratio = chunk_ratio(m['lss'], bs)
        assert len(data) == bs
        end = f.seek(0, os.SEEK_END)
        where = (end + MIB - 1) // MIB * MIB
        f.seek(where)
        f.write(data)
        size = where + bs
        idx = block + block // ratio
        sec_off = bat_off + idx * 8 // 4096 * 4096
        sector = bytearray(pread(f, 4096, sec_off))
        struct.pack_into('<Q', sector, idx * 8 % 4096, where | 6)

        seq = 0x100000001  # high and low halves both checked
        log_guid = uuid.uuid4().bytes_le
        entry = bytearray(8192)
        entry[:4] = b'loge'
        struct.pack_into('<IIQI', entry, 8, 8192, 0, seq, 1)
        entry[32:48] = log_guid
        struct.pack_into('<QQ', entry, 48, size, size)
        d = 64
        entry[d:d + 4] = b'desc'
        entry[d + 4:d + 8] = sector[4092:4096]
        entry[d + 8:d + 16] = sector[0:8]
        struct.pack_into('<QQ', entry, d + 16, sec_off, seq)
        entry[4096:4100] = b'data'
        struct.pack_into('<I', entry, 4100, seq >> 32)
        entry[4104:8188] = sector[8:4092]
        struct.pack_into('<I', entry, 8188, seq & 0xFFFFFFFF)
        entry = with_crc(entry)
        log_off, log_len = struct.unpack_from('<QI', h, 72)[0], \
            struct.unpack_from('<I', h, 68)[0]
        assert log_len >= 8192
        f.seek(log_off)
        f.write(entry)
        h[48:64] = log_guid
        f.seek(hoff)
        f.write(with_crc(h))


def set_sector(path, lss):
    with open(path, 'r+b') as f:
        m = metadata(f)
        ratio = chunk_ratio(512, m['block_size'])
        assert (m['size'] + m['block_size'] - 1) // m['block_size'] <= ratio
        off, _ = regions(f)[G_META]
        t = pread(f, 65536, off)
        n = struct.unpack_from('<H', t, 10)[0]
        for i in range(n):
            e = t[32 + 32 * i:64 + 32 * i]
            if bytes(e[:16]) in (G_LSS, G_PSS):
                ioff = struct.unpack_from('<I', e, 16)[0]
                f.seek(off + ioff)
                f.write(struct.pack('<I', lss))


def main(argv):
    if len(argv) >= 3 and argv[0] == 'diff':
        child, parent = argv[1], argv[2]
        kw = {'writes': [], 'states': {}}
        args = argv[3:]
        while args:
            opt, val = args[0], args[1]
            args = args[2:]
            if opt == '--block-size':
                kw['block_size'] = int(val)
            elif opt == '--write':
                off, fn, skip, n = val.split(':')
                with open(fn, 'rb') as f:
                    f.seek(int(skip))
                    kw['writes'].append((int(off), f.read(int(n))))
            elif opt == '--state':
                b, s = val.split(':')
                kw['states'][int(b)] = int(s)
            elif opt == '--linkage':
                kw['linkage'] = val
            elif opt == '--relative':
                kw['relative'] = val
            else:
                sys.exit('vhdxcraft: unknown option ' + opt)
        make_diff(child, parent, **kw)
    elif len(argv) == 4 and argv[0] == 'log':
        fn, skip = argv[3].split(':')
        with open(fn, 'rb') as f:
            f.seek(int(skip))
            _, m = info(argv[1])
            data = f.read(m['block_size'])
        add_logged_block(argv[1], int(argv[2]), data)
    elif len(argv) == 3 and argv[0] == 'sector':
        set_sector(argv[1], int(argv[2]))
    elif len(argv) == 2 and argv[0] == 'info':
        g, m = info(argv[1])
        print(str(g).lower(), m['size'], m['block_size'], m['lss'], m['pss'])
    else:
        sys.exit(__doc__)


if __name__ == '__main__':
    main(sys.argv[1:])
