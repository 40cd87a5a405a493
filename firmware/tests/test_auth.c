/*
 * test_auth.c -- the suit's authentication layer: SHA-256 (FIPS 180-4
 * examples), HMAC-SHA-256 (RFC 4231 test cases 1-4, 6, 7), the enrollment
 * messages and the frame script of tests/vectors/security.json (the same
 * bytes the Python firmware is held to), run through the core with
 * `ems_auth_verify_tag` as its hook and the key storage hook.
 */
#include "ems_suit.h"
#include "check.h"

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    unsigned v;
    while (hex[0] != '\0' && hex[1] != '\0' && n < cap) {
        if (sscanf(hex, "%2x", &v) != 1) {
            break;
        }
        out[n++] = (uint8_t)v;
        hex += 2;
    }
    return n;
}

static int same_hex(const uint8_t *got, size_t n, const char *hex)
{
    uint8_t want[256];
    size_t m = unhex(hex, want, sizeof want);
    return m == n && memcmp(got, want, n) == 0;
}

static void test_sha256(void)
{
    uint8_t d[EMS_SHA256_LEN];
    ems_sha256_t c;
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    size_t i;
    ems_sha256_init(&c);
    ems_sha256_final(&c, d);
    CHECK(same_hex(d, 32, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    ems_sha256_init(&c);
    ems_sha256_update(&c, (const uint8_t *)"abc", 3);
    ems_sha256_final(&c, d);
    CHECK(same_hex(d, 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    ems_sha256_init(&c); /* 56 bytes: the padding spills into a second block */
    for (i = 0; i < strlen(two); i++) {
        ems_sha256_update(&c, (const uint8_t *)two + i, 1); /* byte by byte */
    }
    ems_sha256_final(&c, d);
    CHECK(same_hex(d, 32, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
}

typedef struct {
    const char *key;
    const char *data;
    const char *mac;
} hmac_case_t;

static void test_hmac_rfc4231(void)
{
    static const char big_key[] =
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaa";
    const hmac_case_t cases[] = {
        {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "4869205468657265",
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
        {"4a656665", "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
         "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
         "dddddddddddddddd",
         "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
        {"0102030405060708090a0b0c0d0e0f10111213141516171819",
         "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
         "cdcdcdcdcdcdcdcd",
         "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
        {big_key,
         "54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a65204b6579202d204861"
         "7368204b6579204669727374",
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
        {big_key,
         "5468697320697320612074657374207573696e672061206c6172676572207468616e20626c6f636b2d73"
         "697a65206b657920616e642061206c6172676572207468616e20626c6f636b2d73697a6520646174612e"
         "20546865206b6579206e6565647320746f20626520686173686564206265666f7265206265696e672075"
         "7365642062792074686520484d414320616c676f726974686d2e",
         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
    };
    uint8_t key[256], data[256], mac[EMS_SHA256_LEN];
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t kn = unhex(cases[i].key, key, sizeof key);
        size_t dn = unhex(cases[i].data, data, sizeof data);
        ems_hmac_sha256(key, kn, data, dn, mac);
        CHECK(same_hex(mac, 32, cases[i].mac));
    }
}

/* -- the key storage hook and the enrollment messages (tests/vectors/security.json) ------- */

typedef struct {
    int calls;
    ems_auth_t saved;
} flash_t;

static void flash_store(void *ctx, const ems_auth_t *a)
{
    flash_t *f = (flash_t *)ctx;
    f->calls++;
    f->saved = *a;
}

static const char KEY1[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
static const char KEY2[] = "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f";
static const char STUDIO[] = "101112131415161718191a1b1c1d1e1f";
static const char ENROLL[] =
    "01101112131415161718191a1b1c1d1e1f01000102030405060708090a0b0c0d0e0f101112131415161718"
    "191a1b1c1d1e1f";

static ems_enroll_t handle_hex(ems_auth_t *a, const char *hex)
{
    uint8_t m[64];
    size_t n = unhex(hex, m, sizeof m);
    return ems_auth_handle(a, m, n);
}

static void test_enrollment_messages(void)
{
    ems_auth_t a;
    flash_t flash;
    memset(&flash, 0, sizeof flash);
    ems_auth_init(&a, flash_store, &flash);
    CHECK(!a.enrolled);
    CHECK_EQ(handle_hex(&a, "030168023331a4740b"), EMS_ENROLL_NOT_ENROLLED);
    CHECK_EQ(handle_hex(&a, "01101112131415161718191a1b1c1d1e1f0100010203040506070809"),
             EMS_ENROLL_MALFORMED);
    CHECK_EQ(flash.calls, 0); /* refusals change nothing, store nothing */
    CHECK_EQ(handle_hex(&a, ENROLL), EMS_ENROLL_OK);
    CHECK(a.enrolled && a.key_id == 1 && same_hex(a.key, 32, KEY1));
    CHECK(same_hex(a.studio_id, 16, STUDIO));
    CHECK_EQ(flash.calls, 1);
    CHECK(flash.saved.enrolled && same_hex(flash.saved.key, 32, KEY1));
    CHECK_EQ(handle_hex(&a, "01404142434445464748494a4b4c4d4e4f02202122232425262728292a2b2c2d2e"
                            "2f303132333435363738393a3b3c3d3e3f"),
             EMS_ENROLL_ELSEWHERE);
    CHECK_EQ(handle_hex(&a, "01101112131415161718191a1b1c1d1e1f02202122232425262728292a2b2c2d2e"
                            "2f303132333435363738393a3b3c3d3e3f"),
             EMS_ENROLL_ALREADY_HERE);
    CHECK_EQ(handle_hex(&a, "0202202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e"
                            "3f4a471abf915af719"),
             EMS_ENROLL_BAD_PROOF);
    CHECK(a.key_id == 1 && same_hex(a.key, 32, KEY1));
    CHECK_EQ(flash.calls, 1);
    CHECK_EQ(handle_hex(&a, "0202202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e"
                            "3fe91937348836b0d5"),
             EMS_ENROLL_OK);
    CHECK(a.key_id == 2 && same_hex(a.key, 32, KEY2));
    CHECK_EQ(flash.calls, 2);
    CHECK_EQ(handle_hex(&a, "030168023331a4740b"), EMS_ENROLL_BAD_PROOF); /* proven with key 1 */
    ems_auth_factory_reset(&a);
    CHECK(!a.enrolled && a.key_id == 0 && a.key[0] == 0 && a.key[31] == 0);
    CHECK_EQ(flash.calls, 3);
    CHECK(!flash.saved.enrolled);
    /* FORGET proven with key 1 */
    CHECK_EQ(handle_hex(&a, ENROLL), EMS_ENROLL_OK);
    CHECK_EQ(handle_hex(&a, "030168023331a4740b"), EMS_ENROLL_OK);
    CHECK(!a.enrolled);
    CHECK_EQ(handle_hex(&a, "04"), EMS_ENROLL_MALFORMED);
}

/* -- the frame script: the core with ems_auth_verify_tag as its hook --------------------- */

typedef struct {
    const char *name;
    int on_stop; /* written to the stop characteristic */
    const char *hex;
    int acts;
    ems_state_t state;
    uint32_t counter;
} step_t;

static void test_frame_script(void)
{
    static const step_t script[] = {
        {"unsigned ARM", 0, "250100000000000000000000000002f7", 0, EMS_STATE_IDLE, 0},
        {"ARM under a wrong key", 0, "2501000000014d6a30ae882b8e9784d3", 0, EMS_STATE_IDLE, 0},
        {"ARM, tag bit flipped", 0, "250200000001eb08a7c3dfaf6c55ebbb", 0, EMS_STATE_IDLE, 0},
        {"ARM signed", 0, "25050000000111b8d9f774225c4a9874", 1, EMS_STATE_ARMED, 5},
        {"SET_LEVELS signed", 0, "210600000001000c141414141414141414141414f42415cb184fad7fc6c4",
         1, EMS_STATE_ARMED, 6},
        {"replayed", 0, "210600000001000c141414141414141414141414f42415cb184fad7fc6c4", 0,
         EMS_STATE_ARMED, 6},
        {"unsigned SET_LEVELS", 0, "216300000000000c7878787878787878787878780000000000000000b562",
         0, EMS_STATE_ARMED, 6},
        {"HEARTBEAT signed", 0, "2407000000011f74410dbdf26b7b791a", 1, EMS_STATE_ARMED, 7},
        {"unsigned STOP_ALL on stop", 1, "23ffffffff0000000000000000000545", 1,
         EMS_STATE_STOPPED, 7},
        {"ARM signed again", 0, "2508000000015f874fd56afbe7106bf0", 1, EMS_STATE_ARMED, 8},
        {"unsigned ARM on stop", 1, "250900000000000000000000000058fc", 0, EMS_STATE_ARMED, 8},
        {"STOP_ALL, foreign key, on stop", 1, "230a000000095dfa99a6caae9049a366", 1,
         EMS_STATE_STOPPED, 8},
        {"ARM signed again", 0, "250b000000017fe4c35e583000c12c7b", 1, EMS_STATE_ARMED, 11},
        {"stale signed STOP_ALL", 0, "23030000000199d2e47de063d01f7c24", 1, EMS_STATE_STOPPED,
         11},
        {"unsigned STOP_ALL on control", 0, "23feffffff0000000000000000006600", 1,
         EMS_STATE_STOPPED, 11},
    };
    ems_auth_t a;
    ems_suit_t s;
    ems_config_t cfg;
    ems_hw_t hw;
    uint8_t f[64];
    size_t i, n;
    ems_auth_init(&a, NULL, NULL);
    CHECK_EQ(handle_hex(&a, ENROLL), EMS_ENROLL_OK);
    memset(&hw, 0, sizeof hw);
    hw.verify_tag = ems_auth_verify_tag;
    hw.ctx = &a;
    ems_config_default(&cfg, 12);
    CHECK(ems_suit_init(&s, &cfg, &hw, 0));
    for (i = 0; i < sizeof script / sizeof script[0]; i++) {
        const step_t *st = &script[i];
        ems_rx_t r;
        n = unhex(st->hex, f, sizeof f);
        r = st->on_stop ? ems_suit_receive_stop(&s, f, n, (uint32_t)(10 * i))
                        : ems_suit_receive(&s, f, n, (uint32_t)(10 * i));
        if ((r == EMS_RX_APPLIED || r == EMS_RX_IGNORED) != (st->acts != 0)) {
            fprintf(stderr, "step %zu (%s): rx %d\n", i, st->name, (int)r);
            CHECK(0);
        }
        CHECK_EQ(ems_suit_state(&s), st->state);
        CHECK_EQ(ems_suit_last_counter(&s), st->counter);
        if (st->state != EMS_STATE_ARMED) {
            CHECK_EQ(ems_suit_level(&s, 0), 0);
        }
    }
    CHECK_EQ(ems_suit_level(&s, 0), 0);
    CHECK_EQ(ems_suit_refused_frames(&s), 3); /* unsigned ARM, SET_LEVELS; ARM on stop */
}

static void test_open_suit_accepts_unsigned_only(void)
{
    ems_auth_t a;
    uint8_t tag[EMS_TAG_LEN] = {0};
    const uint8_t signed_bytes[6] = {0x25, 1, 0, 0, 0, 1};
    ems_auth_init(&a, NULL, NULL);
    CHECK(ems_auth_verify_tag(&a, 0, signed_bytes, 6, tag));
    CHECK(!ems_auth_verify_tag(&a, 1, signed_bytes, 6, tag));
    CHECK_EQ(handle_hex(&a, ENROLL), EMS_ENROLL_OK);
    CHECK(!ems_auth_verify_tag(&a, 0, signed_bytes, 6, tag));
}

int main(void)
{
    RUN(test_sha256);
    RUN(test_hmac_rfc4231);
    RUN(test_enrollment_messages);
    RUN(test_frame_script);
    RUN(test_open_suit_accepts_unsigned_only);
    return check_summary("test_auth");
}
