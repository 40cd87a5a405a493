/*
 * test_suit.c -- the suit's state machine against docs/protocol.md: every
 * transition of the table, the counter rules, the watchdog at 250 ms, the stop
 * latch, program confirmation, the suit's own maximum and charge limit,
 * contact, battery, status notifications and the authentication hook.
 */
#include "ems_suit.h"
#include "check.h"
#include "frames.h"

/* -- a fake board: what set_channel and notify were asked to do ------------------- */

typedef struct {
    uint8_t level[EMS_MAX_CHANNELS];
    uint16_t pulse_width_us[EMS_MAX_CHANNELS];
    uint8_t frequency_hz[EMS_MAX_CHANNELS];
    int set_calls;
    uint8_t notes[64][EMS_STATUS_FRAME_MAX];
    uint16_t note_len[64];
    int n_notes;
    int verify_calls;
    uint8_t accept_key; /* the key id the fake verifier accepts */
    uint16_t last_signed_len;
} board_t;

static void board_set_channel(void *ctx, uint8_t ch, uint8_t code, uint16_t us, uint8_t hz)
{
    board_t *b = (board_t *)ctx;
    b->level[ch] = code;
    b->pulse_width_us[ch] = us;
    b->frequency_hz[ch] = hz;
    b->set_calls++;
}

static void board_notify(void *ctx, const uint8_t *f, uint16_t len)
{
    board_t *b = (board_t *)ctx;
    if (b->n_notes < 64) {
        memcpy(b->notes[b->n_notes], f, len);
        b->note_len[b->n_notes] = len;
    }
    b->n_notes++;
}

static bool board_verify(void *ctx, uint8_t key_id, const uint8_t *signed_bytes,
                         uint16_t signed_len, const uint8_t tag[8])
{
    board_t *b = (board_t *)ctx;
    b->verify_calls++;
    b->last_signed_len = signed_len;
    /* "signature": the tag is the key id repeated, and the frame starts as signed */
    return key_id == b->accept_key && tag[0] == key_id && tag[7] == key_id &&
           (signed_bytes[0] >> 4) == 2;
}

static board_t board;
static ems_suit_t suit;
static uint32_t counter;

static void power_on_with(uint8_t n, const ems_config_t *cfg, bool with_verifier)
{
    ems_hw_t hw;
    ems_config_t c;
    memset(&board, 0xAA, sizeof board); /* garbage: init must drive every output */
    board.set_calls = 0;
    board.n_notes = 0;
    board.verify_calls = 0;
    board.accept_key = 0;
    hw.set_channel = board_set_channel;
    hw.notify = board_notify;
    hw.verify_tag = with_verifier ? board_verify : NULL;
    hw.ctx = &board;
    if (cfg == NULL) {
        ems_config_default(&c, n);
        cfg = &c;
    }
    CHECK(ems_suit_init(&suit, cfg, &hw, 1000));
    counter = 0;
}

static void power_on(uint8_t n)
{
    power_on_with(n, NULL, false);
}

static ems_rx_t send(uint8_t type, uint32_t now)
{
    uint8_t f[64];
    size_t len = frame(f, type, ++counter, NULL, 0);
    return ems_suit_receive(&suit, f, len, now);
}

static ems_rx_t send_levels(uint8_t program, uint8_t code, uint8_t n, uint32_t now)
{
    uint8_t f[64], codes[32];
    size_t len;
    memset(codes, code, sizeof codes);
    len = frame_levels(f, ++counter, program, codes, n);
    return ems_suit_receive(&suit, f, len, now);
}

static ems_rx_t send_program(uint8_t id, uint8_t hz, uint16_t us, uint32_t now)
{
    uint8_t f[64];
    size_t len = frame_program(f, ++counter, id, hz, us);
    return ems_suit_receive(&suit, f, len, now);
}

static int outputs_sum(void)
{
    int sum = 0;
    uint8_t ch;
    for (ch = 0; ch < suit.cfg.n_channels; ch++) {
        CHECK_EQ(board.level[ch], ems_suit_level(&suit, ch)); /* the board follows the core */
        sum += ems_suit_level(&suit, ch);
    }
    return sum;
}

/* status frame k of the board's notifications: a field */
static uint32_t note_u32(int k, int off)
{
    const uint8_t *p = board.notes[k] + off;
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

/* -- power on ----------------------------------------------------------------------- */

static void test_power_on_is_safe(void)
{
    uint8_t id = 9, hz = 0;
    uint16_t us = 0;
    uint8_t ch;
    power_on(12);
    CHECK_EQ(ems_suit_state(&suit), EMS_STATE_IDLE);
    CHECK_EQ(board.set_calls, 12);
    for (ch = 0; ch < 12; ch++) {
        CHECK_EQ(board.level[ch], 0);
        CHECK_EQ(board.pulse_width_us[ch], 350);
        CHECK_EQ(board.frequency_hz[ch], 85);
    }
    ems_suit_program(&suit, &id, &hz, &us);
    CHECK_EQ(id, 0);
    CHECK_EQ(hz, 85);
    CHECK_EQ(us, 350);
    CHECK_EQ(ems_suit_last_counter(&suit), 0);
    CHECK_EQ(ems_suit_faults(&suit), 0);
    CHECK_EQ(ems_suit_battery(&suit), 100);
    CHECK(!ems_suit_watchdog_deadline(&suit, NULL));
    CHECK(!ems_suit_last_feed(&suit, NULL));
    CHECK_EQ(board.n_notes, 0); /* nobody listens yet */
}

static void test_init_refuses_bad_configs(void)
{
    ems_config_t c;
    ems_suit_t s;
    ems_config_default(&c, 0);
    CHECK(!ems_suit_init(&s, &c, NULL, 0));
    ems_config_default(&c, 33);
    CHECK(!ems_suit_init(&s, &c, NULL, 0));
    ems_config_default(&c, 32);
    CHECK(ems_suit_init(&s, &c, NULL, 0)); /* no hardware at all is allowed */
    c.max_level_code = 241;
    CHECK(!ems_suit_init(&s, &c, NULL, 0));
    ems_config_default(&c, 4);
    c.watchdog_ms = 0;
    CHECK(!ems_suit_init(&s, &c, NULL, 0));
    ems_config_default(&c, 4);
    c.att_payload = 21;
    CHECK(!ems_suit_init(&s, &c, NULL, 0));
    ems_config_default(&c, 4);
    c.default_pulse_width_us = 451;
    CHECK(!ems_suit_init(&s, &c, NULL, 0));
    ems_config_default(&c, 4);
    c.default_frequency_hz = 0;
    CHECK(!ems_suit_init(&s, &c, NULL, 0));
    ems_config_default(&c, 4);
    c.status_period_ms = 0;
    CHECK(!ems_suit_init(&s, &c, NULL, 0));
    CHECK(!ems_suit_init(NULL, &c, NULL, 0));
}

/* -- every transition of the table -------------------------------------------------- */

enum { EV_LEVELS, EV_LEVELS_OTHER_PROGRAM, EV_PROGRAM, EV_STOP, EV_HEARTBEAT, EV_ARM, EV_WATCHDOG, N_EV };
static const char *const EV_NAMES[N_EV] = {"SET_LEVELS", "SET_LEVELS(other program)",
                                           "SET_PROGRAM", "STOP_ALL", "HEARTBEAT", "ARM",
                                           "watchdog expiry"};

/* Expected from docs/protocol.md: next state, and whether outputs are non-zero after. */
typedef struct {
    uint8_t next;
    bool outputs_on;
} expect_t;

static const expect_t SPEC[4][N_EV] = {
    /* IDLE */ {{0, false}, {0, false}, {0, false}, {2, false}, {0, false}, {1, false}, {0, false}},
    /* ARMED (levels applied before the event) */
    {{1, true}, {1, true}, {1, false}, {2, false}, {1, true}, {1, true}, {3, false}},
    /* STOPPED */ {{2, false}, {2, false}, {2, false}, {2, false}, {2, false}, {1, false}, {2, false}},
    /* WATCHDOG */ {{3, false}, {3, false}, {3, false}, {2, false}, {3, false}, {1, false}, {3, false}},
};

static void enter(uint8_t state)
{
    power_on(4);
    if (state == EMS_STATE_IDLE) {
        return;
    }
    CHECK_EQ(send(EMS_ARM, 1000), EMS_RX_APPLIED);
    CHECK_EQ(send_levels(0, 40, 4, 1010), EMS_RX_APPLIED);
    CHECK_EQ(outputs_sum(), 160);
    if (state == EMS_STATE_STOPPED) {
        CHECK_EQ(send(EMS_STOP_ALL, 1020), EMS_RX_APPLIED);
    } else if (state == EMS_STATE_WATCHDOG) {
        CHECK(ems_suit_tick(&suit, 1260));
    }
    CHECK_EQ(ems_suit_state(&suit), state);
}

static void fire(int ev, uint32_t now)
{
    switch (ev) {
    case EV_LEVELS: (void)send_levels(0, 30, 4, now); break;
    case EV_LEVELS_OTHER_PROGRAM: (void)send_levels(9, 30, 4, now); break;
    case EV_PROGRAM: (void)send_program(3, 85, 300, now); break;
    case EV_STOP: (void)send(EMS_STOP_ALL, now); break;
    case EV_HEARTBEAT: (void)send(EMS_HEARTBEAT, now); break;
    case EV_ARM: (void)send(EMS_ARM, now); break;
    default: (void)ems_suit_tick(&suit, now + 1000); break;
    }
}

static void test_every_transition(void)
{
    uint8_t st;
    int ev;
    for (st = 0; st < 4; st++) {
        for (ev = 0; ev < N_EV; ev++) {
            int failed = check_failures;
            enter(st);
            fire(ev, 1100);
            CHECK_EQ(ems_suit_state(&suit), SPEC[st][ev].next);
            CHECK_EQ(outputs_sum() != 0, SPEC[st][ev].outputs_on);
            if (ems_suit_state(&suit) != EMS_STATE_ARMED) {
                CHECK_EQ(outputs_sum(), 0); /* outputs are non-zero only in ARMED */
            }
            if (check_failures != failed) {
                fprintf(stderr, "  ... in state %u on %s\n", st, EV_NAMES[ev]);
            }
        }
    }
}

static void test_levels_before_arm_do_nothing(void)
{
    power_on(2);
    CHECK_EQ(send_levels(0, 40, 2, 1000), EMS_RX_IGNORED);
    CHECK_EQ(outputs_sum(), 0);
    CHECK_EQ(board.set_calls, 2); /* only power on drove the outputs */
    CHECK_EQ(send(EMS_ARM, 1010), EMS_RX_APPLIED);
    CHECK_EQ(outputs_sum(), 0); /* zero until a SET_LEVELS */
    CHECK_EQ(send_levels(0, 40, 2, 1020), EMS_RX_APPLIED);
    CHECK_EQ(ems_suit_level(&suit, 0), 40);
    CHECK_EQ(ems_suit_level(&suit, 1), 40);
}

static void test_stop_latches_until_arm(void)
{
    enter(EMS_STATE_ARMED);
    CHECK_EQ(send(EMS_STOP_ALL, 1100), EMS_RX_APPLIED);
    CHECK_EQ(outputs_sum(), 0);
    CHECK_EQ(send_levels(0, 40, 4, 1110), EMS_RX_IGNORED);
    CHECK_EQ(send(EMS_HEARTBEAT, 1120), EMS_RX_IGNORED);
    CHECK_EQ(outputs_sum(), 0);
    CHECK_EQ(ems_suit_state(&suit), EMS_STATE_STOPPED);
    CHECK(!ems_suit_tick(&suit, 5000)); /* a stopped suit has no watchdog to trip */
    CHECK_EQ(send(EMS_ARM, 5010), EMS_RX_APPLIED);
    CHECK_EQ(outputs_sum(), 0);
    CHECK_EQ(send_levels(0, 2, 4, 5020), EMS_RX_APPLIED);
    CHECK_EQ(outputs_sum(), 8);
}

static void test_extra_channels_ignored_missing_are_zero(void)
{
    power_on(4);
    (void)send(EMS_ARM, 1000);
    CHECK_EQ(send_levels(0, 50, 12, 1010), EMS_RX_APPLIED);
    CHECK_EQ(outputs_sum(), 200);
    CHECK_EQ(send_levels(0, 50, 2, 1020), EMS_RX_APPLIED);
    CHECK_EQ(ems_suit_level(&suit, 1), 50);
    CHECK_EQ(ems_suit_level(&suit, 2), 0);
    CHECK_EQ(ems_suit_level(&suit, 3), 0);
    CHECK_EQ(ems_suit_level(&suit, 200), 0); /* outside the suit */
}

static void test_set_channel_only_on_change(void)
{
    int calls;
    power_on(4);
    (void)send(EMS_ARM, 1000);
    (void)send_levels(0, 50, 4, 1010);
    calls = board.set_calls;
    (void)send_levels(0, 50, 4, 1020);
    CHECK_EQ(board.set_calls, calls);
    (void)send_levels(0, 51, 4, 1030);
    CHECK_EQ(board.set_calls, calls + 4);
}

/* -- the counter --------------------------------------------------------------------- */

static void test_stale_and_repeated_frames_are_dropped_without_a_flag(void)
{
    uint8_t f[64], codes[4] = {60, 60, 60, 60};
    size_t len;
    power_on(4);
    (void)send(EMS_ARM, 1000);
    len = frame_levels(f, 10, 0, codes, 4);
    CHECK_EQ(ems_suit_receive(&suit, f, len, 1010), EMS_RX_APPLIED);
    CHECK_EQ(ems_suit_last_counter(&suit), 10);
    codes[0] = 0;
    len = frame_levels(f, 10, 0, codes, 4); /* repeated counter */
    CHECK_EQ(ems_suit_receive(&suit, f, len, 1020), EMS_RX_STALE);
    len = frame_levels(f, 9, 0, codes, 4); /* older */
    CHECK_EQ(ems_suit_receive(&suit, f, len, 1030), EMS_RX_STALE);
    CHECK_EQ(ems_suit_level(&suit, 0), 60);
    CHECK_EQ(ems_suit_last_counter(&suit), 10);
    CHECK_EQ(ems_suit_faults(&suit), 0);
    CHECK_EQ(ems_suit_stale_frames(&suit), 2);
    CHECK_EQ(ems_suit_bad_frames(&suit), 0);
    /* a stale heartbeat does not feed the watchdog */
    len = frame(f, EMS_HEARTBEAT, 5, NULL, 0);
    CHECK_EQ(ems_suit_receive(&suit, f, len, 1200), EMS_RX_STALE);
    CHECK(ems_suit_tick(&suit, 1260));
    /* a stale ARM does not re-arm */
    len = frame(f, EMS_ARM, 4, NULL, 0);
    CHECK_EQ(ems_suit_receive(&suit, f, len, 1300), EMS_RX_STALE);
    CHECK_EQ(ems_suit_state(&suit), EMS_STATE_WATCHDOG);
}

static void test_counter_zero_is_never_fresh(void)
{
    uint8_t f[64];
    size_t len;
    power_on(2);
    len = frame(f, EMS_ARM, 0, NULL, 0);
    CHECK_EQ(ems_suit_receive(&suit, f, len, 1000), EMS_RX_STALE);
    CHECK_EQ(ems_suit_state(&suit), EMS_STATE_IDLE);
    len = frame(f, EMS_ARM, 1, NULL, 0);
    CHECK_EQ(ems_suit_receive(&suit, f, len, 1000), EMS_RX_APPLIED);
}

static void test_stop_all_is_honoured_whatever_its_counter(void)
{
    uint8_t f[64];
    size_t len;
    enter(EMS_STATE_ARMED); /* counters 1, 2 used */
    counter = 100;
    (void)send_levels(0, 40, 4, 1050);
    len = frame(f, EMS_STOP_ALL, 1, NULL, 0); /* a replayed old stop */
    CHECK_EQ(ems_suit_receive(&suit, f, len, 1060), EMS_RX_APPLIED);
    CHECK_EQ(ems_suit_state(&suit), EMS_STATE_STOPPED);
    CHECK_EQ(outputs_sum(), 0);
    CHECK_EQ(ems_suit_last_counter(&suit), 101); /* it never lowers the counter */
    len = frame(f, EMS_STOP_ALL, 0, NULL, 0);
    CHECK_EQ(ems_suit_receive(&suit, f, len, 1070), EMS_RX_IGNORED); /* already stopped */
    CHECK_EQ(ems_suit_state(&suit), EMS_STATE_STOPPED);
    /* a fresh STOP_ALL advances it */
    len = frame(f, EMS_STOP_ALL, 500, NULL, 0);
    (void)ems_suit_receive(&suit, f, len, 1080);
    CHECK_EQ(ems_suit_last_counter(&suit), 500);
    /* but a corrupt STOP_ALL is still corrupt */
    enter(EMS_STATE_ARMED);
    len = frame(f, EMS_STOP_ALL, 1, NULL, 0);
    f[len - 1] ^= 1;
    CHECK_EQ(ems_suit_receive(&suit, f, len, 1100), EMS_RX_BAD_CRC);
    CHECK_EQ(ems_suit_state(&suit), EMS_STATE_ARMED);
}

static void test_counter_is_u32_and_does_not_wrap(void)
{
    uint8_t f[64];
    size_t len;
    power_on(1);
    len = frame(f, EMS_ARM, 0xFFFFFFFEu, NULL, 0);
    CHECK_EQ(ems_suit_receive(&suit, f, len, 1000), EMS_RX_APPLIED);
    len = frame(f, EMS_HEARTBEAT, 0xFFFFFFFFu, NULL, 0);
    CHECK_EQ(ems_suit_receive(&suit, f, len, 1010), EMS_RX_APPLIED);
    CHECK(ems_suit_last_counter(&suit) == 0xFFFFFFFFu);
    len = frame(f, EMS_HEARTBEAT, 1, NULL, 0); /* not "after" 0xFFFFFFFF: no wrapping */
    CHECK_EQ(ems_suit_receive(&suit, f, len, 1020), EMS_RX_STALE);
    len = frame(f, EMS_STOP_ALL, 1, NULL, 0);
    CHECK_EQ(ems_suit_receive(&suit, f, len, 1030), EMS_RX_APPLIED);
    CHECK_EQ(ems_suit_state(&suit), EMS_STATE_STOPPED);
}

/* -- corrupt frames --------------------------------------------------------------------- */

static void test_corrupt_frames_change_nothing_and_are_flagged_once(void)
{
    uint8_t f[64], codes[4] = {0, 0, 0, 0};
    size_t len;
    ems_rx_t r;
    int k;
    enter(EMS_STATE_ARMED);
    ems_suit_notifications_enabled(&suit, 1020);
    for (k = 0; k < 6; k++) {
        switch (k) {
        case 0: len = frame_levels(f, 50, 0, codes, 4); f[3] ^= 0x10; break;   /* CRC */
        case 1: len = frame_raw(f, 1, EMS_STOP_ALL, 50, 0, NULL, 0, NULL); break; /* version 1 */
        case 2: len = frame(f, 0x7, 50, NULL, 0); break;                       /* type */
        case 3: len = frame_levels(f, 50, 0, codes, 4) - 1; break;             /* length */
        case 4: codes[2] = 241; len = frame_levels(f, 50, 0, codes, 4); break; /* level */
        default: len = frame_program(f, 50, 0, 85, 350); break;                /* program 0 */
        }
        r = ems_suit_receive(&suit, f, len, 1030);
        CHECK(r >= EMS_RX_BAD_LENGTH);
        CHECK_EQ(ems_suit_state(&suit), EMS_STATE_ARMED);
        CHECK_EQ(outputs_sum(), 160);
        CHECK_EQ(ems_suit_last_counter(&suit), 2);
        CHECK(ems_suit_faults(&suit) & EMS_FAULT_BAD_FRAME);
    }
    CHECK_EQ(ems_suit_bad_frames(&suit), 6);
    /* a corrupt frame does not feed the watchdog */
    board.n_notes = 0;
    CHECK(ems_suit_tick(&suit, 1010 + 250));
    CHECK_EQ(board.n_notes, 1); /* the trip's status, at once */
    CHECK_EQ(board.notes[0][9], EMS_STATE_WATCHDOG);
    CHECK(board.notes[0][11] & EMS_FAULT_BAD_FRAME); /* reported ... */
    CHECK_EQ(ems_suit_send_status(&suit, 1310), 1);
    CHECK(!(board.notes[1][11] & EMS_FAULT_BAD_FRAME)); /* ... once */
}

/* -- the watchdog ------------------------------------------------------------------------ */

static void test_watchdog_trips_at_250_ms_and_needs_arm(void)
{
    uint32_t deadline = 0;
    power_on(3);
    ems_suit_notifications_enabled(&suit, 1000);
    (void)send(EMS_ARM, 1000);
    (void)send_levels(0, 40, 3, 2000); /* 2000 ms without feeding is fine: the tick decides */
    CHECK_EQ(ems_suit_state(&suit), EMS_STATE_WATCHDOG); /* ... and it tripped on the way in */
    power_on(3);
    ems_suit_notifications_enabled(&suit, 1000);
    (void)send(EMS_ARM, 1000);
    (void)send_levels(0, 40, 3, 1100);
    CHECK(ems_suit_watchdog_deadline(&suit, &deadline));
    CHECK_EQ(deadline, 1350);
    CHECK(!ems_suit_tick(&suit, 1349)); /* (sends the periodic status: last one at 1000) */
    CHECK_EQ(outputs_sum(), 120);
    board.n_notes = 0;
    CHECK(ems_suit_tick(&suit, 1350));
    CHECK_EQ(ems_suit_state(&suit), EMS_STATE_WATCHDOG);
    CHECK_EQ(outputs_sum(), 0);
    CHECK(ems_suit_faults(&suit) & EMS_FAULT_WATCHDOG);
    CHECK_EQ(ems_suit_watchdog_trips(&suit), 1);
    CHECK(!ems_suit_watchdog_deadline(&suit, NULL));
    /* status at once, carrying the suit's clock at the trip */
    CHECK_EQ(board.n_notes, 1);
    CHECK_EQ(board.notes[0][9], EMS_STATE_WATCHDOG);
    CHECK_EQ(note_u32(0, 5), 1350);
    CHECK(board.notes[0][11] & EMS_FAULT_WATCHDOG);
    CHECK(!ems_suit_tick(&suit, 1400)); /* trips once */
    CHECK_EQ(ems_suit_watchdog_trips(&suit), 1);
    /* it never resumes by itself */
    CHECK_EQ(send_levels(0, 40, 3, 1400), EMS_RX_IGNORED);
    CHECK_EQ(outputs_sum(), 0);
    CHECK_EQ(send(EMS_ARM, 1410), EMS_RX_APPLIED);
    CHECK(!(ems_suit_faults(&suit) & EMS_FAULT_WATCHDOG));
    CHECK_EQ(outputs_sum(), 0);
    CHECK(ems_suit_watchdog_deadline(&suit, &deadline));
    CHECK_EQ(deadline, 1660); /* ARM feeds it */
}

static void test_what_feeds_the_watchdog(void)
{
    /* HEARTBEAT and ARM feed it */
    enter(EMS_STATE_ARMED); /* levels at 1010 */
    CHECK_EQ(send(EMS_HEARTBEAT, 1200), EMS_RX_APPLIED);
    CHECK(!ems_suit_tick(&suit, 1449));
    CHECK_EQ(send(EMS_ARM, 1440), EMS_RX_APPLIED);
    CHECK(!ems_suit_tick(&suit, 1689));
    CHECK_EQ(outputs_sum(), 160); /* ARM while ARMED keeps the levels */
    CHECK(ems_suit_tick(&suit, 1690));
    /* SET_PROGRAM does not feed it */
    enter(EMS_STATE_ARMED);
    CHECK_EQ(send_program(2, 85, 350, 1200), EMS_RX_APPLIED);
    CHECK(ems_suit_tick(&suit, 1260));
    /* a SET_LEVELS for another program does: its levels are dropped, the link is alive */
    enter(EMS_STATE_ARMED);
    CHECK_EQ(send_levels(5, 40, 4, 1200), EMS_RX_PROGRAM_MISMATCH);
    CHECK(!ems_suit_tick(&suit, 1449));
    CHECK_EQ(outputs_sum(), 160); /* unchanged */
    CHECK(ems_suit_tick(&suit, 1450));
}

static void test_watchdog_across_the_clock_wrap(void)
{
    ems_hw_t hw;
    ems_config_t c;
    uint8_t f[64], codes[1] = {10};
    size_t len;
    memset(&hw, 0, sizeof hw);
    ems_config_default(&c, 1);
    CHECK(ems_suit_init(&suit, &c, &hw, 0xFFFFFF00u));
    len = frame(f, EMS_ARM, 1, NULL, 0);
    (void)ems_suit_receive(&suit, f, len, 0xFFFFFFF0u);
    len = frame_levels(f, 2, 0, codes, 1);
    (void)ems_suit_receive(&suit, f, len, 0xFFFFFFF0u);
    CHECK(!ems_suit_tick(&suit, 0xFFFFFFFFu));
    CHECK(!ems_suit_tick(&suit, 0x00000000u));
    CHECK(!ems_suit_tick(&suit, 0x000000E9u)); /* 249 ms later */
    CHECK_EQ(ems_suit_level(&suit, 0), 10);
    CHECK(ems_suit_tick(&suit, 0x000000EAu)); /* 250 ms later */
    CHECK_EQ(ems_suit_level(&suit, 0), 0);
}

static void test_watchdog_time_is_configurable(void)
{
    enter(EMS_STATE_ARMED);
    CHECK(!ems_suit_set_watchdog_ms(&suit, 0));
    CHECK(ems_suit_set_watchdog_ms(&suit, 400));
    CHECK(!ems_suit_tick(&suit, 1409));
    CHECK(ems_suit_tick(&suit, 1410));
}

/* -- programs ------------------------------------------------------------------------------ */

static void test_program_confirmation(void)
{
    uint8_t id = 0, hz = 0;
    uint16_t us = 0;
    enter(EMS_STATE_ARMED);
    ems_suit_notifications_enabled(&suit, 1020);
    board.n_notes = 0;
    CHECK_EQ(send_program(7, 20, 450, 1030), EMS_RX_APPLIED);
    /* zero at once, on the new pulse shape */
    CHECK_EQ(outputs_sum(), 0);
    CHECK_EQ(board.pulse_width_us[3], 450);
    CHECK_EQ(board.frequency_hz[3], 20);
    ems_suit_program(&suit, &id, &hz, &us);
    CHECK_EQ(id, 7);
    CHECK_EQ(hz, 20);
    CHECK_EQ(us, 450);
    /* the status confirming it, at once */
    CHECK_EQ(board.n_notes, 1);
    CHECK_EQ(board.notes[0][12], 7);
    CHECK_EQ(board.notes[0][13], 20);
    CHECK_EQ(board.notes[0][14] | (board.notes[0][15] << 8), 450);
    CHECK_EQ(note_u32(0, 1), counter);
    /* levels computed for the old program are dropped and flagged */
    CHECK_EQ(send_levels(0, 40, 4, 1040), EMS_RX_PROGRAM_MISMATCH);
    CHECK_EQ(outputs_sum(), 0);
    CHECK(ems_suit_faults(&suit) & EMS_FAULT_PROGRAM_MISMATCH);
    CHECK_EQ(ems_suit_mismatched_frames(&suit), 1);
    CHECK_EQ(ems_suit_last_counter(&suit), counter); /* authentic and fresh: counted */
    CHECK_EQ(ems_suit_send_status(&suit, 1050), 1);
    CHECK(board.notes[1][11] & EMS_FAULT_PROGRAM_MISMATCH);
    CHECK(!(ems_suit_faults(&suit) & EMS_FAULT_PROGRAM_MISMATCH)); /* reported once */
    /* levels for the new program apply */
    CHECK_EQ(send_levels(7, 40, 4, 1060), EMS_RX_APPLIED);
    CHECK_EQ(outputs_sum(), 160);
    CHECK_EQ(board.pulse_width_us[0], 450);
    /* the same program re-sent (the controller had not seen the status): no glitch */
    board.n_notes = 0;
    CHECK_EQ(send_program(7, 20, 450, 1070), EMS_RX_IGNORED);
    CHECK_EQ(outputs_sum(), 160);
    CHECK_EQ(board.n_notes, 0); /* a no-op: the periodic status confirms it */
    CHECK_EQ(ems_suit_last_counter(&suit), counter); /* ignored, yet it raised the counter */
    /* the same id with another shape is a new program: zero */
    CHECK_EQ(send_program(7, 20, 400, 1080), EMS_RX_APPLIED);
    CHECK_EQ(outputs_sum(), 0);
}

static void test_program_outside_armed_is_adopted_state_unchanged(void)
{
    uint8_t id = 0;
    uint8_t st;
    for (st = 0; st < 4; st++) {
        if (st == EMS_STATE_ARMED) {
            continue;
        }
        enter(st);
        CHECK_EQ(send_program(4, 7, 200, 1100), EMS_RX_APPLIED);
        CHECK_EQ(ems_suit_state(&suit), st);
        ems_suit_program(&suit, &id, NULL, NULL);
        CHECK_EQ(id, 4);
        CHECK_EQ(outputs_sum(), 0);
    }
    /* arming afterwards: levels need the new program id */
    CHECK_EQ(send(EMS_ARM, 1200), EMS_RX_APPLIED);
    CHECK_EQ(send_levels(0, 10, 4, 1210), EMS_RX_PROGRAM_MISMATCH);
    CHECK_EQ(send_levels(4, 10, 4, 1220), EMS_RX_APPLIED);
    CHECK_EQ(outputs_sum(), 40);
}

/* -- the suit's own limits ----------------------------------------------------------------- */

static void test_charge_limit_at_the_active_pulse_width(void)
{
    enter(EMS_STATE_ARMED);
    /* 350 us: 120 mA is 42 uC, under 45: no clamp */
    CHECK_EQ(send_levels(0, 240, 4, 1100), EMS_RX_APPLIED);
    CHECK_EQ(ems_suit_level(&suit, 0), 240);
    CHECK_EQ(ems_suit_faults(&suit), 0);
    /* 450 us: 100 mA is 45 uC exactly (allowed), 100.5 mA is clamped to it */
    (void)send_program(1, 85, 450, 1110);
    CHECK_EQ(send_levels(1, 200, 4, 1120), EMS_RX_APPLIED);
    CHECK_EQ(ems_suit_level(&suit, 0), 200);
    CHECK_EQ(ems_suit_faults(&suit), 0);
    CHECK_EQ(send_levels(1, 201, 4, 1130), EMS_RX_APPLIED);
    CHECK_EQ(ems_suit_level(&suit, 0), 200);
    CHECK(ems_suit_faults(&suit) & EMS_FAULT_CHARGE_CLAMPED);
    CHECK(!(ems_suit_faults(&suit) & EMS_FAULT_LEVEL_CLAMPED));
    CHECK_EQ(ems_suit_charge_clamps(&suit), 1); /* one frame, four channels: one clamp */
    CHECK_EQ(send_levels(1, 240, 4, 1140), EMS_RX_APPLIED);
    CHECK_EQ(ems_suit_charge_clamps(&suit), 2);
    CHECK_EQ(ems_suit_level(&suit, 3), 200);
    /* 400 us: 225 x 400 = 90000 */
    (void)send_program(2, 85, 400, 1150);
    CHECK_EQ(send_levels(2, 240, 4, 1160), EMS_RX_APPLIED);
    CHECK_EQ(ems_suit_level(&suit, 0), 225);
    /* 50 us: never binding */
    (void)send_program(3, 85, 50, 1170);
    CHECK_EQ(send_levels(3, 240, 4, 1180), EMS_RX_APPLIED);
    CHECK_EQ(ems_suit_level(&suit, 0), 240);
    /* the flag stays until ARM */
    CHECK(ems_suit_faults(&suit) & EMS_FAULT_CHARGE_CLAMPED);
    (void)ems_suit_send_status(&suit, 1190);
    CHECK(ems_suit_faults(&suit) & EMS_FAULT_CHARGE_CLAMPED);
    /* an ARM while ARMED only feeds the watchdog: the flag stays */
    CHECK_EQ(send(EMS_ARM, 1200), EMS_RX_APPLIED);
    CHECK(ems_suit_faults(&suit) & EMS_FAULT_CHARGE_CLAMPED);
    CHECK_EQ(ems_suit_level(&suit, 0), 240);
    /* the ARM that arms the suit again clears it */
    (void)send(EMS_STOP_ALL, 1210);
    CHECK(ems_suit_faults(&suit) & EMS_FAULT_CHARGE_CLAMPED);
    (void)send(EMS_ARM, 1220);
    CHECK(!(ems_suit_faults(&suit) & EMS_FAULT_CHARGE_CLAMPED));
}

static void test_own_maximum_and_charge_limit_together(void)
{
    ems_config_t c;
    ems_config_default(&c, 2);
    c.max_level_code = 160; /* an 80 mA suit */
    power_on_with(2, &c, false);
    (void)send(EMS_ARM, 1000);
    CHECK_EQ(send_levels(0, 161, 2, 1010), EMS_RX_APPLIED);
    CHECK_EQ(ems_suit_level(&suit, 0), 160);
    CHECK_EQ(ems_suit_faults(&suit), EMS_FAULT_LEVEL_CLAMPED);
    (void)send(EMS_STOP_ALL, 1015);
    (void)send(EMS_ARM, 1020); /* arming again clears it */
    CHECK_EQ(ems_suit_faults(&suit), 0);
    /* 80 mA at 450 us is 36 uC: only the maximum binds */
    (void)send_program(1, 85, 450, 1030);
    CHECK_EQ(send_levels(1, 240, 2, 1040), EMS_RX_APPLIED);
    CHECK_EQ(ems_suit_level(&suit, 1), 160);
    CHECK_EQ(ems_suit_faults(&suit), EMS_FAULT_LEVEL_CLAMPED);
    /* a tighter charge limit: 30 uC = 60000; at 450 us, 133 codes (66.5 mA) */
    c.charge_limit = 60000;
    power_on_with(2, &c, false);
    (void)send_program(1, 85, 450, 1000);
    (void)send(EMS_ARM, 1010);
    CHECK_EQ(send_levels(1, 200, 2, 1020), EMS_RX_APPLIED);
    CHECK_EQ(ems_suit_level(&suit, 0), 133);
    CHECK_EQ(ems_suit_faults(&suit), EMS_FAULT_LEVEL_CLAMPED | EMS_FAULT_CHARGE_CLAMPED);
    CHECK((uint32_t)ems_suit_level(&suit, 0) * 450u <= 60000u);
}

/* -- the body ------------------------------------------------------------------------------- */

static void test_contact(void)
{
    enter(EMS_STATE_ARMED);
    ems_suit_notifications_enabled(&suit, 1020);
    board.n_notes = 0;
    ems_suit_set_contact(&suit, 1, EMS_IMPEDANCE_OPEN, 1030);
    CHECK_EQ(ems_suit_level(&suit, 1), 0);
    CHECK_EQ(board.level[1], 0);
    CHECK_EQ(ems_suit_level(&suit, 0), 40);
    CHECK(ems_suit_faults(&suit) & EMS_FAULT_ELECTRODE_OPEN);
    CHECK_EQ(board.n_notes, 1);
    CHECK_EQ(board.notes[0][18 + 3], EMS_IMPEDANCE_OPEN);
    CHECK_EQ(send_levels(0, 40, 4, 1040), EMS_RX_APPLIED);
    CHECK_EQ(ems_suit_level(&suit, 1), 0); /* no contact: no current */
    ems_suit_set_contact(&suit, 1, 40, 1050); /* 800 ohm */
    CHECK(!(ems_suit_faults(&suit) & EMS_FAULT_ELECTRODE_OPEN));
    CHECK_EQ(ems_suit_impedance(&suit, 1), 40);
    CHECK_EQ(ems_suit_level(&suit, 1), 0); /* resumes with the next frame, not by itself */
    CHECK_EQ(send_levels(0, 40, 4, 1060), EMS_RX_APPLIED);
    CHECK_EQ(ems_suit_level(&suit, 1), 40);
    ems_suit_set_contact(&suit, 99, EMS_IMPEDANCE_OPEN, 1070); /* outside the suit: ignored */
    CHECK_EQ(ems_suit_faults(&suit), 0);
}

static void test_battery(void)
{
    power_on(1);
    ems_suit_set_battery(&suit, 14);
    CHECK_EQ(ems_suit_faults(&suit), EMS_FAULT_LOW_BATTERY);
    ems_suit_set_battery(&suit, 15);
    CHECK_EQ(ems_suit_faults(&suit), 0);
    ems_suit_set_battery(&suit, 200);
    CHECK_EQ(ems_suit_battery(&suit), 100);
}

/* -- status --------------------------------------------------------------------------------- */

static void test_status_when_enabled_periodic_and_on_change(void)
{
    power_on(4);
    CHECK(!ems_suit_tick(&suit, 1500));
    CHECK_EQ(board.n_notes, 0); /* nobody listens: nothing sent */
    (void)send(EMS_ARM, 1500);
    CHECK_EQ(board.n_notes, 0);
    ems_suit_notifications_enabled(&suit, 1600);
    CHECK_EQ(board.n_notes, 1); /* at once */
    CHECK_EQ(board.note_len[0], 28);
    CHECK_EQ(board.notes[0][0], 0x28);
    CHECK_EQ(note_u32(0, 1), 1);
    CHECK_EQ(note_u32(0, 5), 1600);
    CHECK_EQ(board.notes[0][9], EMS_STATE_ARMED);
    CHECK_EQ(board.notes[0][10], 100);
    CHECK_EQ(board.notes[0][17], 4);
    (void)send(EMS_HEARTBEAT, 1700);
    CHECK(!ems_suit_tick(&suit, 1799));
    CHECK_EQ(board.n_notes, 1);
    CHECK(!ems_suit_tick(&suit, 1800)); /* every 200 ms */
    CHECK_EQ(board.n_notes, 2);
    CHECK_EQ(note_u32(1, 5), 1800);
    CHECK_EQ(note_u32(1, 1), 2);
    (void)send(EMS_STOP_ALL, 1810); /* state change: at once */
    CHECK_EQ(board.n_notes, 3);
    CHECK_EQ(board.notes[2][9], EMS_STATE_STOPPED);
    CHECK(!ems_suit_tick(&suit, 2009));
    CHECK_EQ(board.n_notes, 3); /* the period restarts from the last status */
    CHECK(!ems_suit_tick(&suit, 2010));
    CHECK_EQ(board.n_notes, 4);
    ems_suit_notifications_disabled(&suit);
    CHECK(!ems_suit_tick(&suit, 3000));
    CHECK_EQ(board.n_notes, 4);
}

static void test_status_splits_for_32_channels(void)
{
    uint8_t ch;
    power_on(32);
    (void)send(EMS_ARM, 1000);
    (void)send_levels(0, 30, 32, 1010);
    ems_suit_set_contact(&suit, 31, 50, 1010);
    CHECK_EQ(ems_suit_send_status(&suit, 1020), 2);
    CHECK_EQ(board.note_len[0], 64);
    CHECK_EQ(board.note_len[1], 40);
    CHECK_EQ(board.notes[0][16], 0);
    CHECK_EQ(board.notes[0][17], 22);
    CHECK_EQ(board.notes[1][16], 22);
    CHECK_EQ(board.notes[1][17], 10);
    CHECK_EQ(board.notes[1][18 + 2 * 9 + 1], 50);
    /* one report: same counter, clock and program in both */
    CHECK(memcmp(board.notes[0], board.notes[1], 16) == 0);
    for (ch = 0; ch < 2; ch++) {
        uint16_t len = board.note_len[ch];
        CHECK_EQ(board.notes[ch][len - 2] | (board.notes[ch][len - 1] << 8),
                 spec_crc(board.notes[ch], (size_t)len - 2));
    }
    CHECK(ems_suit_set_att_payload(&suit, 244));
    CHECK_EQ(ems_suit_send_status(&suit, 1030), 1);
    CHECK_EQ(board.note_len[2], 84);
    CHECK(!ems_suit_set_att_payload(&suit, 20)); /* BLE's default 23-byte MTU cannot */
    CHECK_EQ(ems_suit_send_status(&suit, 1040), 1);
    CHECK(ems_suit_set_att_payload(&suit, 22));
    CHECK_EQ(ems_suit_send_status(&suit, 1050), 32);
}

/* -- authentication ---------------------------------------------------------------------------- */

static void test_key_id_zero_needs_a_zero_tag(void)
{
    uint8_t f[64];
    const uint8_t tag[8] = {0, 0, 0, 0, 0, 0, 0, 1};
    size_t len;
    power_on(1);
    len = frame_raw(f, 2, EMS_ARM, 1, 0, NULL, 0, tag);
    CHECK_EQ(ems_suit_receive(&suit, f, len, 1000), EMS_RX_BAD_TAG);
    CHECK_EQ(ems_suit_state(&suit), EMS_STATE_IDLE);
    CHECK(ems_suit_faults(&suit) & EMS_FAULT_BAD_FRAME);
    CHECK_EQ(ems_suit_last_counter(&suit), 0);
}

static void test_no_key_enrolled_accepts_key_id_zero_only(void)
{
    uint8_t f[64];
    const uint8_t tag[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    size_t len;
    power_on(1);
    len = frame_raw(f, 2, EMS_ARM, 1, 1, NULL, 0, tag);
    CHECK_EQ(ems_suit_receive(&suit, f, len, 1000), EMS_RX_UNAUTHENTICATED);
    CHECK_EQ(ems_suit_state(&suit), EMS_STATE_IDLE);
    CHECK_EQ(ems_suit_last_counter(&suit), 0); /* a forged frame cannot move the counter */
    len = frame_raw(f, 2, EMS_STOP_ALL, 1, 1, NULL, 0, tag);
    CHECK_EQ(ems_suit_receive(&suit, f, len, 1000), EMS_RX_UNAUTHENTICATED);
    CHECK_EQ(ems_suit_state(&suit), EMS_STATE_IDLE);
}

static void test_the_verification_hook_decides(void)
{
    uint8_t f[64];
    const uint8_t tag3[8] = {3, 3, 3, 3, 3, 3, 3, 3};
    const uint8_t tag4[8] = {4, 4, 4, 4, 4, 4, 4, 4};
    const uint8_t p[] = {0, 1, 20};
    size_t len;
    power_on_with(1, NULL, true);
    board.accept_key = 3;
    len = frame_raw(f, 2, EMS_ARM, 1, 3, NULL, 0, tag3);
    CHECK_EQ(ems_suit_receive(&suit, f, len, 1000), EMS_RX_APPLIED);
    CHECK_EQ(board.last_signed_len, 6); /* bytes 0 .. 5+n, n = 0 */
    len = frame_raw(f, 2, EMS_SET_LEVELS, 2, 3, p, sizeof p, tag3);
    CHECK_EQ(ems_suit_receive(&suit, f, len, 1010), EMS_RX_APPLIED);
    CHECK_EQ(board.last_signed_len, 9);
    CHECK_EQ(ems_suit_level(&suit, 0), 20);
    len = frame_raw(f, 2, EMS_HEARTBEAT, 3, 4, NULL, 0, tag4); /* another key */
    CHECK_EQ(ems_suit_receive(&suit, f, len, 1020), EMS_RX_UNAUTHENTICATED);
    CHECK(ems_suit_faults(&suit) & EMS_FAULT_BAD_FRAME); /* a failing tag is flagged */
    (void)ems_suit_send_status(&suit, 1025);
    /* with a key enrolled the hook refuses unsigned frames: counted, not flagged, no counter */
    len = frame(f, EMS_HEARTBEAT, 4, NULL, 0);
    CHECK_EQ(ems_suit_receive(&suit, f, len, 1026), EMS_RX_UNAUTHENTICATED);
    CHECK_EQ(ems_suit_refused_frames(&suit), 1);
    CHECK_EQ(ems_suit_faults(&suit) & EMS_FAULT_BAD_FRAME, 0);
    CHECK_EQ(ems_suit_state(&suit), EMS_STATE_ARMED);
    /* ... except STOP_ALL: anyone may stop the suit, and it never moves the counter */
    len = frame(f, EMS_STOP_ALL, 5, NULL, 0);
    CHECK_EQ(ems_suit_receive(&suit, f, len, 1030), EMS_RX_APPLIED);
    CHECK_EQ(ems_suit_state(&suit), EMS_STATE_STOPPED);
    CHECK_EQ(ems_suit_level(&suit, 0), 0);
    CHECK_EQ(board.verify_calls, 5);
    CHECK_EQ(ems_suit_last_counter(&suit), 2);
}

static void test_the_stop_characteristic_honours_any_stop(void)
{
    uint8_t f[64];
    const uint8_t tag9[8] = {9, 9, 9, 9, 9, 9, 9, 9};
    const uint8_t tag3[8] = {3, 3, 3, 3, 3, 3, 3, 3};
    const uint8_t p[] = {0, 1, 20};
    size_t len;
    power_on_with(1, NULL, true);
    board.accept_key = 3;
    len = frame_raw(f, 2, EMS_ARM, 1, 3, NULL, 0, tag3);
    CHECK_EQ(ems_suit_receive(&suit, f, len, 1000), EMS_RX_APPLIED);
    len = frame_raw(f, 2, EMS_SET_LEVELS, 2, 3, p, sizeof p, tag3);
    CHECK_EQ(ems_suit_receive(&suit, f, len, 1010), EMS_RX_APPLIED);
    /* a wrong-key STOP_ALL with a huge counter: stops, but the counter stays */
    len = frame_raw(f, 2, EMS_STOP_ALL, 0xFFFFFFFFu, 9, NULL, 0, tag9);
    CHECK_EQ(ems_suit_receive_stop(&suit, f, len, 1020), EMS_RX_APPLIED);
    CHECK_EQ(ems_suit_state(&suit), EMS_STATE_STOPPED);
    CHECK_EQ(ems_suit_level(&suit, 0), 0);
    CHECK_EQ(ems_suit_last_counter(&suit), 2);
    /* anything but STOP_ALL on the stop characteristic changes nothing */
    len = frame_raw(f, 2, EMS_ARM, 3, 3, NULL, 0, tag3);
    CHECK_EQ(ems_suit_receive_stop(&suit, f, len, 1030), EMS_RX_UNAUTHENTICATED);
    CHECK_EQ(ems_suit_state(&suit), EMS_STATE_STOPPED);
    CHECK_EQ(ems_suit_last_counter(&suit), 2);
    /* a signed STOP_ALL there moves the counter */
    len = frame_raw(f, 2, EMS_STOP_ALL, 7, 3, NULL, 0, tag3);
    CHECK_EQ(ems_suit_receive_stop(&suit, f, len, 1040), EMS_RX_APPLIED);
    CHECK_EQ(ems_suit_last_counter(&suit), 7);
    f[len - 1] ^= 1u; /* corrupt: flagged, nothing else */
    CHECK_EQ(ems_suit_receive_stop(&suit, f, len, 1050), EMS_RX_BAD_CRC);
}

/* -- random frames under the sanitizers: the invariants hold whatever arrives ---------- */

static uint32_t lcg_state = 12345u;
static uint32_t lcg(void)
{
    lcg_state = lcg_state * 1664525u + 1013904223u;
    return lcg_state >> 8;
}

static void test_random_frames_keep_the_invariants(void)
{
    ems_config_t c;
    uint8_t f[80];
    uint32_t now = 1000;
    int i;
    int applied = 0;
    ems_config_default(&c, 12);
    c.max_level_code = 200;
    power_on_with(12, &c, false);
    ems_suit_notifications_enabled(&suit, now);
    for (i = 0; i < 100000; i++) {
        size_t len = lcg() % 60u;
        size_t k;
        uint8_t ch;
        uint8_t hz = 0, id = 0;
        uint16_t us = 0;
        for (k = 0; k < len; k++) {
            f[k] = (uint8_t)lcg();
        }
        if (lcg() & 1u) { /* half of them well-formed enough to pass the CRC */
            uint8_t type = (uint8_t)(lcg() % 7u);
            uint32_t ctr = (lcg() % 8u == 0u) ? lcg() % 64u : ++counter; /* some stale */
            uint16_t crc;
            len = type == EMS_SET_LEVELS ? 18u + 1u + lcg() % 32u : type == EMS_SET_PROGRAM ? 20u : 16u;
            f[0] = (uint8_t)(0x20u | type);
            f[1] = (uint8_t)ctr;
            f[2] = (uint8_t)(ctr >> 8);
            f[3] = (uint8_t)(ctr >> 16);
            f[4] = (uint8_t)(ctr >> 24);
            f[5] = 0;
            if (type == EMS_SET_LEVELS) {
                f[6] = (uint8_t)(lcg() % 3u);
                f[7] = (uint8_t)(len - 18u);
                for (k = 8; k < len - 10u; k++) {
                    f[k] = (uint8_t)(lcg() % 242u); /* 241 now and then */
                }
            } else if (type == EMS_SET_PROGRAM) {
                uint16_t w = (uint16_t)(40u + lcg() % 420u);
                f[6] = (uint8_t)(lcg() % 3u);
                f[7] = (uint8_t)(lcg() % 160u);
                f[8] = (uint8_t)(w & 0xFF);
                f[9] = (uint8_t)(w >> 8);
            }
            memset(f + len - 10u, 0, 8);
            crc = spec_crc(f, len - 2u);
            f[len - 2u] = (uint8_t)(crc & 0xFF);
            f[len - 1u] = (uint8_t)(crc >> 8);
        }
        now += lcg() % 40u;
        if (ems_suit_receive(&suit, f, len, now) == EMS_RX_APPLIED) {
            applied++;
        }
        if (lcg() % 16u == 0u) {
            (void)ems_suit_tick(&suit, now);
        }
        board.n_notes = 0;
        ems_suit_program(&suit, &id, &hz, &us);
        for (ch = 0; ch < 12; ch++) {
            uint8_t level = ems_suit_level(&suit, ch);
            if (ems_suit_state(&suit) != EMS_STATE_ARMED) {
                CHECK_EQ(level, 0);
            }
            CHECK(level <= 200);
            CHECK((uint32_t)level * us <= EMS_CHARGE_LIMIT_DEFAULT);
            CHECK_EQ(board.level[ch], level);
            CHECK_EQ(board.pulse_width_us[ch], us);
        }
        if (check_failures > 0) {
            fprintf(stderr, "  ... after random frame %d\n", i);
            return;
        }
    }
    printf("  random frames: %d applied of 100000\n", applied);
    CHECK(applied > 10000); /* the generator reaches the state table, not only the CRC check */
}

int main(void)
{
    RUN(test_power_on_is_safe);
    RUN(test_init_refuses_bad_configs);
    RUN(test_every_transition);
    RUN(test_levels_before_arm_do_nothing);
    RUN(test_stop_latches_until_arm);
    RUN(test_extra_channels_ignored_missing_are_zero);
    RUN(test_set_channel_only_on_change);
    RUN(test_stale_and_repeated_frames_are_dropped_without_a_flag);
    RUN(test_counter_zero_is_never_fresh);
    RUN(test_stop_all_is_honoured_whatever_its_counter);
    RUN(test_counter_is_u32_and_does_not_wrap);
    RUN(test_corrupt_frames_change_nothing_and_are_flagged_once);
    RUN(test_watchdog_trips_at_250_ms_and_needs_arm);
    RUN(test_what_feeds_the_watchdog);
    RUN(test_watchdog_across_the_clock_wrap);
    RUN(test_watchdog_time_is_configurable);
    RUN(test_program_confirmation);
    RUN(test_program_outside_armed_is_adopted_state_unchanged);
    RUN(test_charge_limit_at_the_active_pulse_width);
    RUN(test_own_maximum_and_charge_limit_together);
    RUN(test_contact);
    RUN(test_battery);
    RUN(test_status_when_enabled_periodic_and_on_change);
    RUN(test_status_splits_for_32_channels);
    RUN(test_key_id_zero_needs_a_zero_tag);
    RUN(test_no_key_enrolled_accepts_key_id_zero_only);
    RUN(test_the_stop_characteristic_honours_any_stop);
    RUN(test_the_verification_hook_decides);
    RUN(test_random_frames_keep_the_invariants);
    return check_summary("test_suit");
}
