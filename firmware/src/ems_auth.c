/*
 * ems_auth.c -- the suit's authentication layer (docs/security.md): SHA-256,
 * HMAC-SHA-256, the enrolled key and the enrollment messages.
 *
 * SHA-256 is FIPS 180-4 written out plainly (no tables beyond K, no heap, no
 * floating point); HMAC is RFC 2104. A control frame's tag is the first 8
 * bytes of HMAC-SHA-256(suit key, signed bytes). `ems_auth_verify_tag` is a
 * ready-made `ems_verify_tag_fn` over an `ems_auth_t`: key id 0 (unsigned)
 * verifies only while no key is enrolled (an open suit); any other key id
 * verifies only if it is the enrolled key's id and the tag matches (compared
 * in constant time). The enrollment messages (ENROLL, ROTATE, FORGET) change
 * the key; every change is handed to the application's `store` hook to be
 * written to flash before the suit answers.
 */
#include "ems_suit.h"

#include <string.h>

static const uint32_t K[64] = {
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u, 0x923f82a4u,
    0xab1c5ed5u, 0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u, 0x72be5d74u, 0x80deb1feu,
    0x9bdc06a7u, 0xc19bf174u, 0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu,
    0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau, 0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u,
    0xc6e00bf3u, 0xd5a79147u, 0x06ca6351u, 0x14292967u, 0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu,
    0x53380d13u, 0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u, 0xa2bfe8a1u, 0xa81a664bu,
    0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u, 0x19a4c116u,
    0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu, 0x682e6ff3u,
    0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u, 0x90befffau, 0xa4506cebu, 0xbef9a3f7u,
    0xc67178f2u};

static uint32_t rotr(uint32_t x, unsigned n) { return (x >> n) | (x << (32u - n)); }

static void compress(uint32_t h[8], const uint8_t block[64])
{
    uint32_t w[64];
    uint32_t a, b, c, d, e, f, g, hh;
    unsigned i;
    for (i = 0; i < 16u; i++) {
        w[i] = (uint32_t)block[4u * i] << 24 | (uint32_t)block[4u * i + 1u] << 16 |
               (uint32_t)block[4u * i + 2u] << 8 | (uint32_t)block[4u * i + 3u];
    }
    for (i = 16; i < 64u; i++) {
        uint32_t s0 = rotr(w[i - 15u], 7) ^ rotr(w[i - 15u], 18) ^ (w[i - 15u] >> 3);
        uint32_t s1 = rotr(w[i - 2u], 17) ^ rotr(w[i - 2u], 19) ^ (w[i - 2u] >> 10);
        w[i] = w[i - 16u] + s0 + w[i - 7u] + s1;
    }
    a = h[0]; b = h[1]; c = h[2]; d = h[3]; e = h[4]; f = h[5]; g = h[6]; hh = h[7];
    for (i = 0; i < 64u; i++) {
        uint32_t t1 = hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) +
                      K[i] + w[i];
        uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        hh = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}

void ems_sha256_init(ems_sha256_t *c)
{
    static const uint32_t H0[8] = {0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
                                   0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u};
    memcpy(c->h, H0, sizeof H0);
    c->bytes = 0;
    c->used = 0;
}

void ems_sha256_update(ems_sha256_t *c, const uint8_t *data, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++) {
        c->buf[c->used++] = data[i];
        if (c->used == 64u) {
            compress(c->h, c->buf);
            c->used = 0;
        }
    }
    c->bytes += (uint64_t)len;
}

void ems_sha256_final(ems_sha256_t *c, uint8_t out[EMS_SHA256_LEN])
{
    const uint64_t bits = c->bytes * 8u;
    unsigned i;
    c->buf[c->used++] = 0x80u;
    if (c->used > 56u) {
        while (c->used < 64u) {
            c->buf[c->used++] = 0;
        }
        compress(c->h, c->buf);
        c->used = 0;
    }
    while (c->used < 56u) {
        c->buf[c->used++] = 0;
    }
    for (i = 0; i < 8u; i++) {
        c->buf[56u + i] = (uint8_t)(bits >> (56u - 8u * i));
    }
    compress(c->h, c->buf);
    for (i = 0; i < 8u; i++) {
        out[4u * i] = (uint8_t)(c->h[i] >> 24);
        out[4u * i + 1u] = (uint8_t)(c->h[i] >> 16);
        out[4u * i + 2u] = (uint8_t)(c->h[i] >> 8);
        out[4u * i + 3u] = (uint8_t)c->h[i];
    }
}

void ems_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *msg, size_t len,
                     uint8_t out[EMS_SHA256_LEN])
{
    uint8_t k[64];
    uint8_t pad[64];
    uint8_t inner[EMS_SHA256_LEN];
    ems_sha256_t c;
    unsigned i;
    memset(k, 0, sizeof k);
    if (key_len > 64u) {
        ems_sha256_init(&c);
        ems_sha256_update(&c, key, key_len);
        ems_sha256_final(&c, k);
    } else if (key_len > 0u) {
        memcpy(k, key, key_len);
    }
    for (i = 0; i < 64u; i++) {
        pad[i] = (uint8_t)(k[i] ^ 0x36u);
    }
    ems_sha256_init(&c);
    ems_sha256_update(&c, pad, 64);
    ems_sha256_update(&c, msg, len);
    ems_sha256_final(&c, inner);
    for (i = 0; i < 64u; i++) {
        pad[i] = (uint8_t)(k[i] ^ 0x5cu);
    }
    ems_sha256_init(&c);
    ems_sha256_update(&c, pad, 64);
    ems_sha256_update(&c, inner, sizeof inner);
    ems_sha256_final(&c, out);
}

bool ems_equal_ct(const uint8_t *a, const uint8_t *b, size_t n)
{
    uint8_t diff = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        diff = (uint8_t)(diff | (a[i] ^ b[i]));
    }
    return diff == 0u;
}

static bool proof_ok(const uint8_t key[EMS_KEY_LEN], const uint8_t *signed_bytes, size_t len,
                     const uint8_t *proof)
{
    uint8_t mac[EMS_SHA256_LEN];
    ems_hmac_sha256(key, EMS_KEY_LEN, signed_bytes, len, mac);
    return ems_equal_ct(mac, proof, EMS_TAG_LEN);
}

/* -- the enrolled key ------------------------------------------------------------------- */

void ems_auth_init(ems_auth_t *a, ems_store_fn store, void *store_ctx)
{
    memset(a, 0, sizeof *a);
    a->store = store;
    a->store_ctx = store_ctx;
}

bool ems_auth_restore(ems_auth_t *a, uint8_t key_id, const uint8_t key[EMS_KEY_LEN],
                      const uint8_t studio_id[EMS_STUDIO_ID_LEN])
{
    if (key_id == 0u) {
        return false;
    }
    a->enrolled = true;
    a->key_id = key_id;
    memcpy(a->key, key, EMS_KEY_LEN);
    memcpy(a->studio_id, studio_id, EMS_STUDIO_ID_LEN);
    return true;
}

static void stored(ems_auth_t *a)
{
    if (a->store != NULL) {
        a->store(a->store_ctx, a);
    }
}

void ems_auth_factory_reset(ems_auth_t *a)
{
    ems_store_fn store = a->store;
    void *ctx = a->store_ctx;
    uint32_t refused = a->refused;
    memset(a, 0, sizeof *a); /* the key is wiped, not just flagged */
    a->store = store;
    a->store_ctx = ctx;
    a->refused = refused;
    stored(a);
}

ems_enroll_t ems_auth_handle(ems_auth_t *a, const uint8_t *msg, size_t len)
{
    static const size_t ENROLL_LEN = 1u + EMS_STUDIO_ID_LEN + 1u + EMS_KEY_LEN;
    static const size_t ROTATE_LEN = 1u + 1u + EMS_KEY_LEN + EMS_TAG_LEN;
    static const size_t FORGET_LEN = 1u + EMS_TAG_LEN;
    ems_enroll_t r = EMS_ENROLL_OK;
    if (msg == NULL || len == 0u) {
        r = EMS_ENROLL_MALFORMED;
    } else if (msg[0] == 0x01u) {
        if (len != ENROLL_LEN || msg[1u + EMS_STUDIO_ID_LEN] == 0u) {
            r = EMS_ENROLL_MALFORMED;
        } else if (a->enrolled) {
            r = ems_equal_ct(a->studio_id, msg + 1, EMS_STUDIO_ID_LEN)
                    ? EMS_ENROLL_ALREADY_HERE
                    : EMS_ENROLL_ELSEWHERE;
        } else {
            memcpy(a->studio_id, msg + 1, EMS_STUDIO_ID_LEN);
            a->key_id = msg[1u + EMS_STUDIO_ID_LEN];
            memcpy(a->key, msg + 2u + EMS_STUDIO_ID_LEN, EMS_KEY_LEN);
            a->enrolled = true;
        }
    } else if (msg[0] == 0x02u) {
        if (len != ROTATE_LEN || msg[1] == 0u) {
            r = EMS_ENROLL_MALFORMED;
        } else if (!a->enrolled) {
            r = EMS_ENROLL_NOT_ENROLLED;
        } else if (msg[1] == a->key_id) {
            r = EMS_ENROLL_MALFORMED;
        } else if (!proof_ok(a->key, msg, 2u + EMS_KEY_LEN, msg + 2u + EMS_KEY_LEN)) {
            r = EMS_ENROLL_BAD_PROOF;
        } else {
            a->key_id = msg[1];
            memcpy(a->key, msg + 2, EMS_KEY_LEN);
        }
    } else if (msg[0] == 0x03u) {
        uint8_t signed_bytes[1u + EMS_STUDIO_ID_LEN];
        if (len != FORGET_LEN) {
            r = EMS_ENROLL_MALFORMED;
        } else if (!a->enrolled) {
            r = EMS_ENROLL_NOT_ENROLLED;
        } else {
            signed_bytes[0] = 0x03u;
            memcpy(signed_bytes + 1, a->studio_id, EMS_STUDIO_ID_LEN);
            if (!proof_ok(a->key, signed_bytes, sizeof signed_bytes, msg + 1)) {
                r = EMS_ENROLL_BAD_PROOF;
            } else {
                ems_auth_factory_reset(a);
                return EMS_ENROLL_OK;
            }
        }
    } else {
        r = EMS_ENROLL_MALFORMED;
    }
    if (r == EMS_ENROLL_OK) {
        stored(a);
    }
    return r;
}

bool ems_auth_verify_tag(void *ctx, uint8_t key_id, const uint8_t *signed_bytes,
                         uint16_t signed_len, const uint8_t tag[EMS_TAG_LEN])
{
    const ems_auth_t *a = (const ems_auth_t *)ctx;
    uint8_t mac[EMS_SHA256_LEN];
    if (key_id == 0u) {
        return !a->enrolled; /* unsigned frames act only on an open suit */
    }
    if (!a->enrolled || key_id != a->key_id) {
        return false;
    }
    ems_hmac_sha256(a->key, EMS_KEY_LEN, signed_bytes, signed_len, mac);
    return ems_equal_ct(mac, tag, EMS_TAG_LEN);
}
