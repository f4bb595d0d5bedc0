/* backends/sim/hash.c - 256-bit multiply-rotate digest (see hash.h). */
#include "backends/sim/hash.h"

#include <stdio.h>
#include <string.h>

#define P1 UINT64_C(0x9E3779B185EBCA87)
#define P2 UINT64_C(0xC2B2AE3D27D4EB4F)
#define P3 UINT64_C(0x165667B19E3779F9)
#define P4 UINT64_C(0x85EBCA77C2B2AE63)
#define P5 UINT64_C(0x27D4EB2F165667C5)

static inline uint64_t rotl(uint64_t x, unsigned r)
{
    return (x << r) | (x >> (64 - r));
}

static inline uint64_t round64(uint64_t acc, uint64_t in)
{
    acc += in * P2;
    acc = rotl(acc, 31);
    return acc * P1;
}

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline uint64_t avalanche(uint64_t x)
{
    x ^= x >> 33;
    x *= P2;
    x ^= x >> 29;
    x *= P3;
    x ^= x >> 32;
    return x;
}

void sim_hash_init(struct sim_hash *h)
{
    /* Distinct seeds keep the lanes from being equal on equal input. */
    h->lane[0] = P1 + P2;
    h->lane[1] = P2;
    h->lane[2] = 0;
    h->lane[3] = (uint64_t)0 - P1;
    h->total = 0;
    h->buffered = 0;
}

static void stripes(struct sim_hash *h, const uint8_t *p, size_t n)
{
    uint64_t a = h->lane[0], b = h->lane[1], c = h->lane[2], d = h->lane[3];
    for (size_t i = 0; i < n; i++, p += 32) {
        a = round64(a, load64(p));
        b = round64(b, load64(p + 8));
        c = round64(c, load64(p + 16));
        d = round64(d, load64(p + 24));
    }
    h->lane[0] = a;
    h->lane[1] = b;
    h->lane[2] = c;
    h->lane[3] = d;
}

void sim_hash_update(struct sim_hash *h, const void *data, size_t len)
{
    const uint8_t *p = data;
    h->total += len;
    if (h->buffered) {
        size_t take = 32 - h->buffered;
        if (take > len)
            take = len;
        memcpy(h->buf + h->buffered, p, take);
        h->buffered += take;
        p += take;
        len -= take;
        if (h->buffered < 32)
            return;
        stripes(h, h->buf, 1);
        h->buffered = 0;
    }
    if (len >= 32) {
        stripes(h, p, len / 32);
        p += len & ~(size_t)31;
        len &= 31;
    }
    if (len) {
        memcpy(h->buf, p, len);
        h->buffered = len;
    }
}

void sim_hash_u64(struct sim_hash *h, uint64_t v)
{
    sim_hash_update(h, &v, sizeof(v));
}

void sim_hash_final_hex(struct sim_hash *h, char hex[65])
{
    /* Absorb the tail as a zero-padded stripe plus the length, so inputs that
     * differ only in trailing zeros still differ. */
    uint8_t tail[32] = { 0 };
    memcpy(tail, h->buf, h->buffered);
    stripes(h, tail, 1);
    uint64_t len = h->total;
    uint64_t l[4];
    for (int i = 0; i < 4; i++)
        l[i] = h->lane[i] ^ avalanche(len + (uint64_t)i * P4);
    for (int i = 0; i < 4; i++) {
        uint64_t x = l[i];
        x += rotl(l[(i + 1) & 3], 17) * P3;
        x ^= rotl(l[(i + 2) & 3], 29) * P4;
        x += rotl(l[(i + 3) & 3], 43) * P5;
        x = avalanche(x ^ (uint64_t)(i + 1) * P1);
        snprintf(hex + 16 * i, 17, "%016llx", (unsigned long long)x);
    }
    hex[64] = '\0';
}
