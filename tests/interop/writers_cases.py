# SPDX-License-Identifier: MIT
"""Builds the images of test_writers.sh into a directory: every writer
profile of writers.py as a fixed, dynamic or differencing disk, in chains
that cross writers. Writes NAME.flat (the content each image encodes) and
a manifest, one line per image:

    NAME CHAIN QEMU PYVHDI (tab-separated)

CHAIN: the image files leaf to base, comma-separated; QEMU: "yes" when
qemu-img reads it stand-alone ("chs" when qemu sizes it by CHS);
PYVHDI: "yes" when libvhdi reads it (given the chain).
Usage: writers_cases.py DIR
"""
import os
import sys

from writers import (MACX, PROFILES as P, W2KU, W2RU, WI2K, WI2R,
                     block, chs, fixed, full, rnd, runs, sparse, utf16le)

K = 1024
M = K * K


def main(d):
    os.chdir(d)
    os.makedirs('vms', exist_ok=True)
    os.makedirs('tapmac', exist_ok=True)
    flats, lines = {}, []

    def note(name, chain, qemu='no', pyvhdi='yes'):
        open(name + '.flat', 'wb').write(flats[name])
        lines.append('\t'.join((name, ','.join(chain), qemu, pyvhdi)))

    # blktap vhd-util: 8 MiB (whole 2 MiB blocks), BAT for "-S 16M",
    # batmap, hidden (it is a parent), blocks allocated out of order.
    bs = 2 * M
    _, flats['tap-base.vhd'] = sparse(
        'tap-base.vhd', P['tap'], 8 * M,
        {0: block(1, bs, full(bs)), 2: block(2, bs, runs(bs, (0, 40)))},
        extra_entries=4, batmap=True, hidden=1, order=[2, 0])
    note('tap-base.vhd', ['tap-base.vhd'], 'yes')

    # Windows 10/Hyper-V 2012+ child over it: 512 KiB blocks.
    bs = 512 * K
    wpath = 'C:\\ClusterStorage\\Volume1\\VMs\\tap-base.vhd'
    _, flats['win-child.vhd'] = sparse(
        'win-child.vhd', P['win10'], 8 * M,
        {1: block(3, bs, runs(bs, (0, 128)), True),
         5: block(4, bs, runs(bs, (8, 16), (100, 128)), True),
         15: block(5, bs, runs(bs, (120, 128)), True)},
        bs=bs, parent=('tap-base.vhd', flats['tap-base.vhd']),
        locators=[(W2KU, utf16le(wpath), 4096, False),
                  (W2RU, utf16le('.\\tap-base.vhd'), 65536, False)],
        uname=wpath.encode('utf-16-be'), pts=0)
    note('win-child.vhd', ['win-child.vhd', 'tap-base.vhd'])

    # A Windows child whose locators and name spell the parent's name in
    # another case (Windows compares names without case).
    _, flats['win-case.vhd'] = sparse(
        'win-case.vhd', P['win10'], 8 * M,
        {2: block(25, 512 * K, runs(512 * K, (4, 12)), True)},
        bs=512 * K, parent=('tap-base.vhd', flats['tap-base.vhd']),
        locators=[(W2KU, utf16le('C:\\VMs\\Tap-Base.VHD'), 4096, False),
                  (W2RU, utf16le('.\\TAP-BASE.VHD'), 65536, False)],
        uname='C:\\VMs\\Tap-Base.VHD'.encode('utf-16-be'), pts=0)
    note('win-case.vhd', ['win-case.vhd', 'tap-base.vhd'])

    # VirtualBox leaf over the Windows child: POSIX W2ku, bare W2ru.
    bs = 2 * M
    _, flats['vbox-leaf.vhd'] = sparse(
        'vbox-leaf.vhd', P['vbox'], 8 * M,
        {3: block(6, bs, runs(bs, (0, 8), (500, 512)), True)},
        parent=('win-child.vhd', flats['win-child.vhd']),
        locators=[(W2KU, utf16le(os.path.abspath('win-child.vhd')), 512,
                   False),
                  (W2RU, utf16le('win-child.vhd'), 512, False)],
        uname='win-child.vhd'.encode('utf-16-be'))
    note('vbox-leaf.vhd', ['vbox-leaf.vhd', 'win-child.vhd', 'tap-base.vhd'])

    # Virtual PC 2007 dynamic: current size = CHS size, saved state set.
    c, h, s = chs(10 * M + 12345)
    size = c * h * s * 512
    _, flats['vpc-base.vhd'] = sparse(
        'vpc-base.vhd', P['vpc'], size,
        {0: block(7, bs, runs(bs, (0, 1))),
         (size - 1) // bs: block(8, bs, full(bs))},
        saved=1)
    note('vpc-base.vhd', ['vpc-base.vhd'], 'yes')

    # vhd-util snapshot of it: relative path in MacX, W2ku and W2ru.
    loc = [(MACX, b'file://./vpc-base.vhd', 512, False),
           (W2KU, utf16le('.\\vpc-base.vhd'), 512, False),
           (W2RU, utf16le('.\\vpc-base.vhd'), 512, False)]
    _, flats['tap-child.vhd'] = sparse(
        'tap-child.vhd', P['tap'], size,
        {1: block(9, bs, runs(bs, (0, 64)), True)},
        parent=('vpc-base.vhd', flats['vpc-base.vhd']), locators=loc,
        uname='vpc-base.vhd'.encode('utf-16-be'), batmap=True)
    note('tap-child.vhd', ['tap-child.vhd', 'vpc-base.vhd'])

    # An older Virtual PC child found only by its deprecated Wi2r
    # (plain bytes, NUL-terminated, data space in sectors); the bare
    # unicode name does not lead there (the parent is one level up).
    _, flats['vpc-old-base.vhd'] = sparse(
        'vpc-old-base.vhd', P['vpc'], size, {3: block(24, bs, full(bs))})
    note('vpc-old-base.vhd', ['vpc-old-base.vhd'], 'yes')
    loc = [(WI2R, b'..\\vpc-old-base.vhd\0', 512, True),
           (WI2K, b'C:\\VPC\\vpc-old-base.vhd\0', 512, True)]
    _, flats['vms/vpc-old.vhd'] = sparse(
        'vms/vpc-old.vhd', P['vpc'], size,
        {2: block(10, bs, runs(bs, (16, 32)), True)},
        parent=('vpc-old-base.vhd', flats['vpc-old-base.vhd']),
        locators=loc, uname='vpc-old-base.vhd'.encode('utf-16-be'))
    note('vms/vpc-old.vhd', ['vms/vpc-old.vhd', 'vpc-old-base.vhd'])

    # A blktap child found only by its MacX "file://../x" URL, marked
    # hidden (vhd-util set -f hidden) while still a leaf.
    _, flats['tapmac/tap-mac.vhd'] = sparse(
        'tapmac/tap-mac.vhd', P['tap'], 8 * M,
        {0: block(11, bs, runs(bs, (0, 8)), True)},
        parent=('tap-base.vhd', flats['tap-base.vhd']),
        locators=[(MACX, b'file://../tap-base.vhd', 512, False)],
        uname=b'', batmap=True, hidden=1)
    note('tapmac/tap-mac.vhd', ['tapmac/tap-mac.vhd', 'tap-base.vhd'])

    # Disk2VHD fixed disk (footer only) and a Hyper-V 2008 R2 child.
    data = bytearray(6 * M)
    data[:M] = rnd(12, M)
    data[5 * M:] = rnd(13, M)
    fixed('d2v-fixed.vhd', P['d2v'], bytes(data))
    flats['d2v-fixed.vhd'] = bytes(data)
    note('d2v-fixed.vhd', ['d2v-fixed.vhd'], 'yes')
    _, flats['win2008-child.vhd'] = sparse(
        'win2008-child.vhd', P['win2008'], 6 * M,
        {2: block(14, bs, runs(bs, (0, 4), (200, 256)), True)},
        parent=('d2v-fixed.vhd', flats['d2v-fixed.vhd']),
        locators=[(W2KU, utf16le('D:\\VHDs\\d2v-fixed.vhd\0'), 512,
                   False),
                  (W2RU, utf16le('.\\d2v-fixed.vhd'), 512, False)],
        uname='d2v-fixed.vhd'.encode('utf-16-be'))
    note('win2008-child.vhd', ['win2008-child.vhd', 'd2v-fixed.vhd'])

    # An early VirtualBox child copied from another host: its W2ku
    # (data space in sectors) is stale, and its parent name, the way
    # found, is little-endian.
    _, flats['vbox-old.vhd'] = sparse(
        'vbox-old.vhd', P['vbox'], 6 * M,
        {0: block(17, bs, runs(bs, (8, 24)), True)},
        parent=('d2v-fixed.vhd', flats['d2v-fixed.vhd']),
        locators=[(W2KU, utf16le('/home/alice/.VirtualBox/HardDisks/'
                                 'd2v-fixed.vhd'), 512, True)],
        uname='d2v-fixed.vhd'.encode('utf-16-le'))
    note('vbox-old.vhd', ['vbox-old.vhd', 'd2v-fixed.vhd'])

    # vhd-util snapshot with a size larger than its parent's: past the
    # parent's end the child reads zeros.
    _, flats['tap-big.vhd'] = sparse(
        'tap-big.vhd', P['tap'], 10 * M,
        {4: block(19, bs, runs(bs, (0, 8)), True)},
        parent=('d2v-fixed.vhd', flats['d2v-fixed.vhd']),
        locators=[(MACX, b'file://./d2v-fixed.vhd', 512, False),
                  (W2KU, utf16le('.\\d2v-fixed.vhd'), 512, False),
                  (W2RU, utf16le('.\\d2v-fixed.vhd'), 512, False)],
        uname='d2v-fixed.vhd'.encode('utf-16-be'), batmap=True)
    note('tap-big.vhd', ['tap-big.vhd', 'd2v-fixed.vhd'], 'no', 'no')

    # Virtual PC for Mac: creator OS "Mac ", a binary "Mac " alias
    # locator first, then a MacX URL with a host and %20 escapes to a
    # parent in a directory whose name has a space.
    mac = dict(P['vpc'], cos=b'Mac ')
    os.makedirs('My VMs', exist_ok=True)
    c, h, s = chs(4 * M)
    msize = c * h * s * 512
    _, flats['My VMs/mac-base.vhd'] = sparse(
        'My VMs/mac-base.vhd', mac, msize,
        {1: block(20, bs, full(bs))})
    note('My VMs/mac-base.vhd', ['My VMs/mac-base.vhd'], 'yes')
    url = 'file://localhost' + os.path.abspath('My VMs/mac-base.vhd')
    _, flats['mac-child.vhd'] = sparse(
        'mac-child.vhd', mac, msize,
        {0: block(21, bs, runs(bs, (0, 16)), True)},
        parent=('My VMs/mac-base.vhd', flats['My VMs/mac-base.vhd']),
        locators=[(b'Mac ', rnd(22, 300), 512, True),
                  (MACX, url.replace(' ', '%20').encode(), 1024, True)],
        uname='mac-base.vhd'.encode('utf-16-be'))
    note('mac-child.vhd', ['mac-child.vhd', 'My VMs/mac-base.vhd'])

    # Old Virtual PC dynamic disk ending in a 511-byte footer.
    _, flats['vpc-short.vhd'] = sparse(
        'vpc-short.vhd', P['vpc'], 4 * M,
        {0: block(23, bs, runs(bs, (0, 4)))}, short_footer=True)
    note('vpc-short.vhd', ['vpc-short.vhd'], 'no', 'no')

    # blktap 1.1 marked images hidden without updating the checksum.
    tap11 = dict(P['tap'], cver=0x00010001)
    _, flats['tap11.vhd'] = sparse(
        'tap11.vhd', tap11, 4 * M, {1: block(18, bs, runs(bs, (0, 64)))},
        hidden=1, stale_hidden=True)
    note('tap11.vhd', ['tap11.vhd'])  # qemu refuses the checksum

    # Disk2VHD dynamic, and Virtual PC fixed with the 511-byte footer.
    # libvhdi documents Disk2VHD's creator as "d2v\0", qemu as "d2v ":
    # qemu sizes the former by CHS.
    _, flats['d2v-dyn.vhd'] = sparse(
        'd2v-dyn.vhd', dict(P['d2v'], creator=b'd2v\0'), 5 * M + 512,
        {2: block(15, bs, full(bs))})
    note('d2v-dyn.vhd', ['d2v-dyn.vhd'], 'chs')
    c, h, s = chs(3 * M)
    data = rnd(16, c * h * s * 512)
    fixed('vpc-fixed.vhd', P['vpc'], data, short_footer=True)
    flats['vpc-fixed.vhd'] = data
    note('vpc-fixed.vhd', ['vpc-fixed.vhd'], 'no', 'no')

    open('manifest', 'w').write('\n'.join(lines) + '\n')


if __name__ == '__main__':
    main(sys.argv[1])
