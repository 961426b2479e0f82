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
  vhdxcraft.py extras IMAGE                (unknown items and regions,
               hashed: what a writer must keep)
  vhdxcraft.py layout IMAGE                (fails when structures overlap
               or NOT_PRESENT/ZERO entries keep an offset)
  vhdxcraft.py sum FILE...                 (sha256 of the non-zero data,
               with offsets: equal iff the contents are equal)
build() lays out whole images as other writers do (region order, block
and sector sizes, extra items and regions, block states, identical
headers, payload past 4 GiB); log_entry() and ring_put() write log
entries anywhere in the ring (tests/interop/vhdx_writers_cases.py).
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


def header(seq, data_write, log_guid=b'\0' * 16, log_off=MIB, log_len=MIB):
    h = bytearray(4096)
    h[:4] = b'head'
    struct.pack_into('<Q', h, 8, seq)
    h[16:32] = uuid.uuid4().bytes_le
    h[32:48] = data_write
    h[48:64] = log_guid
    struct.pack_into('<HHIQ', h, 64, 0, 1, log_len, log_off)
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


def bat_count(nblocks, ratio, child):
    """BAT entries: payload and sector bitmap entries interleaved."""
    if child:
        return (nblocks + ratio - 1) // ratio * (ratio + 1)
    return nblocks + (nblocks - 1) // ratio


def table(entries):
    """Metadata table: header, then (guid, offset, length, flags)."""
    t = bytearray(65536)
    t[:8] = b'metadata'
    struct.pack_into('<H', t, 10, len(entries))
    for i, (g, off, n, flags) in enumerate(entries):
        e = 32 + 32 * i
        t[e:e + 16] = g
        struct.pack_into('<III', t, e + 16, off, n, flags)
    return t


def place(blocks, bs, lss, writes):
    """Fold writes [(offset, bytes)] into blocks {b: (buf, sectors)}."""
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
    return blocks


def build(path, size, bs, lss=512, pss=512, writes=(), parent=None,
          locator=None, fixed=False, states=None, layout=('log', 'meta',
          'bat'), log_size=MIB, items=None, extra_items=(), item_align=1,
          seqs=(1, 2), identical=False, creator='vhdxcraft', order=None,
          data_at=0, garbage=None, page83=None, data_write=None,
          trim=False, allocate_all=False):
    """Write a VHDX laid out as a given writer lays it out.

    layout: regions from 1 MiB on, in order: 'log', 'meta', 'bat',
      ('gap', MiB) or ('region', GUID bytes, MiB, required, fill byte);
      ('far', GUID bytes, at MiB, MiB): an optional region listed in the
      table only (it may lie past the end of the file).
    writes: [(offset, bytes)]; whole blocks become FULLY_PRESENT, others
      PARTIALLY_PRESENT with a sector bitmap (children only).
    parent: path of the parent (its page 83 id and sector sizes are
      taken; locator: [(key, value)], default the v2 service's keys;
      @LINK@ and @LINKUPPER@ in a value: the parent's DataWriteGuid).
    fixed: LeaveBlockAllocated, every block not in states allocated
      (state 6); allocate_all: the same without LeaveBlockAllocated.
    states: {block: state} or {block: (state, keep offset)}: blocks left
      in state 1-3 (or 0); keep offset points the entry at a block full
      of garbage (allowed for UNDEFINED and UNMAPPED, and what qemu's
      "fixed" does with ZERO entries).
    items: metadata entries [(guid, flags, data)] replacing the standard
      ones; extra_items are appended. order: allocation order of blocks.
    data_at: first payload offset (to put blocks past 4 GiB; sparse).
    trim: the file ends where the virtual disk does in the last block
      (allocated last), not at the block's end.
    Returns the DataWriteGuid written (bytes).
    """
    child = parent is not None
    if child:
        _, pm = info(parent)
        lss, pss = pm['lss'], pm['pss']
        page83 = pm['id']
    ratio = chunk_ratio(lss, bs)
    nblocks = (size + bs - 1) // bs
    entries = bat_count(nblocks, ratio, child)
    bat_len = (entries * 8 + MIB - 1) // MIB * MIB
    spb = bs // lss
    where = {}
    pos = MIB
    extra_regions = []
    for r in layout:
        if r == 'log':
            where['log'] = pos
            pos += log_size
        elif r == 'meta':
            where['meta'] = pos
            pos += MIB
        elif r == 'bat':
            where['bat'] = pos
            pos += bat_len
        elif r[0] == 'gap':
            pos += r[1] * MIB
        elif r[0] == 'far':  # listed only: past the end of the file
            _, g, at, mib = r
            extra_regions.append((g, at * MIB, mib * MIB, 0, None))
        else:
            _, g, mib, req, fill = r
            extra_regions.append((g, pos, mib * MIB, req, fill))
            pos += mib * MIB
    data_off = max(pos, data_at)

    blocks = place({}, bs, lss, writes)
    if fixed or allocate_all:
        for b in range(nblocks):
            if b not in (states or {}):
                blocks.setdefault(b, (bytearray(bs), set()))
    if not child:  # a base holds whole blocks: unwritten sectors zero
        for b in blocks:
            blocks[b] = (blocks[b][0], set(range(spb)))
    bat = [0] * entries
    body = []  # (offset, bytes)
    end = data_off
    sbs = {}
    for b in (order or sorted(blocks)):
        buf, present = blocks[b]
        body.append((end, bytes(buf)))
        full = len(present) == spb
        bat[b + b // ratio] = end | (6 if full else 7)
        end += bs
        if not full:
            c = b // ratio
            sb = sbs.setdefault(c, bytearray(MIB))
            first = (b % ratio) * spb
            for s in present:
                k = first + s
                sb[k // 8] |= 1 << (k % 8)
    for c in sorted(sbs):
        body.append((end, bytes(sbs[c])))
        bat[c * (ratio + 1) + ratio] = end | 6
        end += MIB
    for b, st in (states or {}).items():
        st, keep = st if isinstance(st, tuple) else (st, False)
        if keep:
            body.append((end, garbage or bytes([0xa5]) * bs))
            bat[b + b // ratio] = end | st
            end += bs
        else:
            bat[b + b // ratio] = st

    if items is None:
        items = [
            (G_PARAMS, 4, struct.pack('<II', bs, (2 if child else 0) |
                                      (1 if fixed else 0))),
            (G_SIZE, 6, struct.pack('<Q', size)),
            (G_ID, 6, page83 or uuid.uuid4().bytes_le),
            (G_LSS, 6, struct.pack('<I', lss)),
            (G_PSS, 6, struct.pack('<I', pss)),
        ]
        if child:
            items.append((G_LOC, 4, _locator(parent, locator)))
    items = list(items) + list(extra_items)
    meta = bytearray(MIB)
    rows, ioff = [], 65536
    for g, flags, data in items:
        n = len(data)
        rows.append((g, ioff if n else 0, n, flags))
        meta[ioff:ioff + n] = data
        ioff = (ioff + n + item_align - 1) // item_align * item_align
    meta[:65536] = table(rows)

    regs = [(G_BAT, where['bat'], bat_len, 1),
            (G_META, where['meta'], MIB, 1)]
    regs += [(g, o, n, req) for g, o, n, req, _ in extra_regions]
    reg = bytearray(65536)
    reg[:4] = b'regi'
    struct.pack_into('<I', reg, 8, len(regs))
    for i, (g, o, n, req) in enumerate(regs):
        reg[16 + 32 * i:32 + 32 * i] = g
        struct.pack_into('<QII', reg, 32 + 32 * i, o, n, req)
    reg = with_crc(reg)

    ident = bytearray(65536)
    ident[:8] = b'vhdxfile'
    c = utf16(creator)
    ident[8:8 + len(c)] = c
    dw = data_write or uuid.uuid4().bytes_le
    log_off = where.get('log', 0)  # no 'log': a file without one
    h1 = header(seqs[0], dw, log_off=log_off, log_len=log_size)
    h2 = h1 if identical else header(seqs[1], dw, log_off=log_off,
                                     log_len=log_size)
    with open(path, 'xb') as f:
        f.write(ident)
        f.write(h1)
        f.seek(128 * 1024)
        f.write(h2)
        f.seek(192 * 1024)
        f.write(reg)
        f.write(reg)
        f.seek(where['meta'])
        f.write(meta)
        f.seek(where['bat'])
        f.write(b''.join(struct.pack('<Q', e) for e in bat))
        for g, o, n, req, fill in extra_regions:
            if fill is not None:
                f.seek(o)
                f.write(bytes([fill]) * n)
        for off, data in body:  # sparse: zero MiBs stay holes
            for k in range(0, len(data), MIB):
                piece = data[k:k + MIB]
                if piece.count(0) != len(piece):
                    f.seek(off + k)
                    f.write(piece)
        last = (nblocks - 1) * bs
        if trim and body and body[-1][0] == end - bs and \
                bat[nblocks - 1 + (nblocks - 1) // ratio] & ~0xFFFFF == \
                end - bs:
            end -= bs - (size - last)
        f.truncate(max(end, pos))
    return dw


def _locator(parent, pairs):
    pguid, _ = info(parent)
    pname = os.path.basename(parent)
    if pairs is None:
        pairs = [
            ('parent_linkage', '{%s}' % str(pguid).lower()),
            ('relative_path', '.\\' + pname),
            ('volume_path', '\\\\?\\Volume{0b6a6e33-0000-0000-0000-'
             '100000000000}\\vms\\' + pname),
            ('absolute_win32_path', '\\\\?\\C:\\vms\\' + pname),
        ]
    return locator([(k, v.replace('@LINK@', str(pguid)).replace(
        '@LINKUPPER@', str(pguid).upper())) for k, v in pairs])


def make_diff(child, parent, block_size=2 * MIB, writes=(), states=None,
              linkage=None, relative=None):
    pguid, _ = info(parent)
    pname = os.path.basename(parent)
    pairs = [
        ('parent_linkage', linkage or '{%s}' % str(pguid).lower()),
        ('relative_path', relative or '.\\' + pname),
        ('volume_path', '\\\\?\\Volume{0b6a6e33-0000-0000-0000-'
         '100000000000}\\vms\\' + pname),
        ('absolute_win32_path', '\\\\?\\C:\\vms\\' + pname),
    ]
    _, pm = info(parent)
    build(child, pm['size'], block_size, writes=writes, parent=parent,
          locator=pairs, states=states)


def log_entry(seq, tail, log_guid, descs, flushed, last, pad=0):
    """One log entry: header and descriptor sectors, then a data sector
    per 'desc'. descs: ('desc', offset, 4096 bytes) or ('zero', offset,
    length). pad: extra zero sectors counted in EntryLength."""
    nd = len(descs)
    dsec = 1 if nd <= 126 else 1 + (nd - 126 + 127) // 128
    data = [d for d in descs if d[0] == 'desc']
    n = (dsec + len(data) + pad) * 4096
    e = bytearray(n)
    e[:4] = b'loge'
    struct.pack_into('<IIQI', e, 8, n, tail, seq, nd)
    e[32:48] = log_guid
    struct.pack_into('<QQ', e, 48, flushed, last)
    k = dsec
    for i, d in enumerate(descs):
        p = 64 + 32 * i
        if d[0] == 'zero':
            e[p:p + 4] = b'zero'
            struct.pack_into('<QQQ', e, p + 8, d[2], d[1], seq)
            continue
        sec = d[2]
        e[p:p + 4] = b'desc'
        e[p + 4:p + 8] = sec[4092:4096]
        e[p + 8:p + 16] = sec[0:8]
        struct.pack_into('<QQ', e, p + 16, d[1], seq)
        s = k * 4096
        e[s:s + 4] = b'data'
        struct.pack_into('<I', e, s + 4, seq >> 32)
        e[s + 8:s + 4092] = sec[8:4092]
        struct.pack_into('<I', e, s + 4092, seq & 0xFFFFFFFF)
        k += 1
    return with_crc(e)


def ring_put(f, h, pos, entry):
    """Write an entry at log offset pos, wrapping at the ring's end."""
    log_len = struct.unpack_from('<I', h, 68)[0]
    log_off = struct.unpack_from('<Q', h, 72)[0]
    first = min(len(entry), log_len - pos)
    f.seek(log_off + pos)
    f.write(entry[:first])
    if first < len(entry):
        f.seek(log_off)
        f.write(entry[first:])


def set_log_guid(f, log_guid):
    """Put log_guid into the current header (a host that crashed)."""
    hoff, h = current_header(f)
    h[48:64] = log_guid
    f.seek(hoff)
    f.write(with_crc(h))
    return h


def add_logged_block(path, block, data):
    """Append block data at the end of the file; put the BAT sector that
    maps it (state FULLY_PRESENT) only into a log entry, as a writer that
    crashed after logging but before the in-place BAT write leaves it."""
    with open(path, 'r+b') as f:
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
        h = set_log_guid(f, log_guid)
        assert struct.unpack_from('<I', h, 68)[0] >= 8192
        ring_put(f, h, 0, log_entry(seq, 0, log_guid,
                                    [('desc', sec_off, sector)], size, size))


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


def extras(path):
    """Lines naming each metadata item and region no reader must drop:
    every item but the six standard ones, every region but BAT and
    metadata, with a hash of its bytes."""
    import hashlib
    std = (G_PARAMS, G_SIZE, G_ID, G_LSS, G_PSS, G_LOC)
    out = []
    with open(path, 'rb') as f:
        for g, (off, n) in sorted(regions(f).items()):
            if g not in (G_BAT, G_META):  # past the end: zeros
                data = pread(f, n, off).ljust(n, b'\0')
                out.append('region %s %d %d %s' % (
                    uuid.UUID(bytes_le=g), off, n,
                    hashlib.sha256(data).hexdigest()))
        moff, _ = regions(f)[G_META]
        t = pread(f, 65536, moff)
        for i in range(struct.unpack_from('<H', t, 10)[0]):
            e = t[32 + 32 * i:64 + 32 * i]
            ioff, n, flags = struct.unpack_from('<III', e, 16)
            if bytes(e[:16]) not in std:
                out.append('item %s %d %s' % (
                    uuid.UUID(bytes_le=bytes(e[:16])), flags,
                    hashlib.sha256(pread(f, n, moff + ioff)).hexdigest()))
    return out


def layout_problems(path):
    """What breaks the spec's layout rules: structures overlapping (the
    header area, every region listed, the log, blocks and sector bitmaps
    the BAT points at, offsets kept by UNDEFINED/UNMAPPED entries), below
    1 MiB, or NOT_PRESENT/ZERO entries with an offset."""
    with open(path, 'rb') as f:
        _, h = current_header(f)
        m = metadata(f)
        used = [(0, MIB, 'header area')]
        log_len, log_off = struct.unpack_from('<IQ', h, 68)
        if log_len:
            used.append((log_off, log_len, 'log'))
        for g, (off, n) in regions(f).items():
            used.append((off, n, 'region %s' % uuid.UUID(bytes_le=g)))
        bs = m['block_size']
        ratio = chunk_ratio(m['lss'], bs)
        nblocks = (m['size'] + bs - 1) // bs
        n = bat_count(nblocks, ratio, m['has_parent'])
        bat_off, _ = regions(f)[G_BAT]
        bat = struct.unpack('<%dQ' % n, pread(f, 8 * n, bat_off))
    out = []
    for i, e in enumerate(bat):
        st, off = e & 7, e & ~0xFFFFF
        sb = i % (ratio + 1) == ratio
        if st in (0, 2) and not sb and off:
            out.append('BAT entry %d: state %d with offset %d' % (i, st, off))
        elif off and (sb or st in (1, 3, 5, 6, 7)):
            used.append((off, MIB if sb else bs, 'BAT entry %d' % i))
    used.sort()
    for (a, an, aw), (b, bn, bw) in zip(used, used[1:]):
        if a + an > b:
            out.append('%s [%d, %d) overlaps %s at %d' % (aw, a, a + an,
                                                          bw, b))
    return out


def sparse_sum(path):
    """sha256 of a file's data extents and their offsets (SEEK_DATA):
    a 5 GiB sparse image hashes in the time of its few MiB of data."""
    import hashlib
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        size = os.fstat(f.fileno()).st_size
        h.update(b'%d' % size)
        pos = 0
        while pos < size:
            try:
                pos = os.lseek(f.fileno(), pos, os.SEEK_DATA)
            except OSError:
                break
            end = os.lseek(f.fileno(), pos, os.SEEK_HOLE)
            while pos < end:
                n = min(MIB, end - pos)
                chunk = pread(f, n, pos)
                if chunk.count(0) != n:  # holes may be reported as data
                    h.update(b'@%d' % pos)
                    h.update(chunk)
                pos += n
    return h.hexdigest()


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
    elif len(argv) == 2 and argv[0] == 'layout':
        bad = layout_problems(argv[1])
        if bad:
            sys.exit('%s: %s' % (argv[1], '; '.join(bad)))
    elif len(argv) >= 2 and argv[0] == 'sum':
        for p in argv[1:]:
            print(sparse_sum(p), p)
    elif len(argv) == 2 and argv[0] == 'extras':
        print('\n'.join(extras(argv[1])))
    elif len(argv) == 2 and argv[0] == 'info':
        g, m = info(argv[1])
        print(str(g).lower(), m['size'], m['block_size'], m['lss'], m['pss'])
    else:
        sys.exit(__doc__)


if __name__ == '__main__':
    main(sys.argv[1:])
