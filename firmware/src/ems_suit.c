/*
 * ems_suit.c -- the suit's state machine (docs/protocol.md, "The suit's state
 * machine"), its watchdog, stop latch, program handling and own limits.
 *
 * A frame is judged in this order: the codec (length, CRC, version, type,
 * fields), the tag (key id 0: eight zero bytes; otherwise the hook), the
 * counter (newer than the last accepted, except STOP_ALL), then the state
 * table. Only then does anything change.
 */
#include "ems_suit.h"

/* Events of the state table: the five control frames and the watchdog expiring. */
enum {
    EV_SET_LEVELS,
    EV_SET_PROGRAM,
    EV_STOP_ALL,
    EV_HEARTBEAT,
    EV_ARM,
    EV_WATCHDOG_EXPIRED,
    EV_COUNT
};

/* What a transition does to the outputs and flags. */
enum {
    DO_NOTHING,   /* "any other": unchanged (outputs outside ARMED are zero anyway) */
    DO_ZERO,      /* zero every output at once */
    DO_LEVELS,    /* apply the frame's levels if its program is the active one */
    DO_PROGRAM,   /* adopt the frame's program; zero until levels for it */
    DO_ARM,       /* arm: clear WATCHDOG, LEVEL_CLAMPED, CHARGE_CLAMPED; zero until levels */
    DO_FEED       /* HEARTBEAT, or ARM while ARMED: feeds the watchdog, nothing else */
};

typedef struct {
    uint8_t next;
    uint8_t action;
} transition_t;

#define I EMS_STATE_IDLE
#define A EMS_STATE_ARMED
#define S EMS_STATE_STOPPED
#define W EMS_STATE_WATCHDOG

/*
 * Every rule in one place: TRANSITIONS[state][event] = {next state, action}.
 * Rows are the spec's table read state by state; "unchanged" entries are the
 * spec's "any other".
 */
static const transition_t TRANSITIONS[4][EV_COUNT] = {
    /* IDLE */ {
        /* SET_LEVELS */ {I, DO_NOTHING},
        /* SET_PROGRAM */ {I, DO_PROGRAM},
        /* STOP_ALL */ {S, DO_ZERO},
        /* HEARTBEAT */ {I, DO_NOTHING},
        /* ARM */ {A, DO_ARM},
        /* WATCHDOG */ {I, DO_NOTHING}},
    /* ARMED */ {
        /* SET_LEVELS */ {A, DO_LEVELS},
        /* SET_PROGRAM */ {A, DO_PROGRAM},
        /* STOP_ALL */ {S, DO_ZERO},
        /* HEARTBEAT */ {A, DO_FEED},
        /* ARM */ {A, DO_FEED}, /* already armed: feeds the watchdog; flags stay */
        /* WATCHDOG */ {W, DO_ZERO}},
    /* STOPPED */ {
        /* SET_LEVELS */ {S, DO_NOTHING},
        /* SET_PROGRAM */ {S, DO_PROGRAM},
        /* STOP_ALL */ {S, DO_NOTHING},
        /* HEARTBEAT */ {S, DO_NOTHING},
        /* ARM */ {A, DO_ARM},
        /* WATCHDOG */ {S, DO_NOTHING}},
    /* WATCHDOG */ {
        /* SET_LEVELS */ {W, DO_NOTHING},
        /* SET_PROGRAM */ {W, DO_PROGRAM},
        /* STOP_ALL */ {S, DO_ZERO},
        /* HEARTBEAT */ {W, DO_NOTHING},
        /* ARM */ {A, DO_ARM},
        /* WATCHDOG */ {W, DO_NOTHING}},
};

#undef I
#undef A
#undef S
#undef W

/* -- outputs ---------------------------------------------------------------------- */

static void drive(ems_suit_t *s, uint8_t ch, uint8_t code)
{
    s->level[ch] = code;
    if (s->hw.set_channel != NULL) {
        s->hw.set_channel(s->hw.ctx, ch, code, s->pulse_width_us, s->frequency_hz);
    }
}

static void zero_all(ems_suit_t *s)
{
    uint8_t ch;
    for (ch = 0; ch < s->cfg.n_channels; ch++) {
        if (s->level[ch] != 0u) {
            drive(s, ch, 0);
        }
    }
}

static uint8_t charge_cap_code(const ems_suit_t *s)
{
    uint32_t cap = s->cfg.charge_limit / s->pulse_width_us; /* only on a program change */
    return cap > EMS_LEVEL_CODE_MAX ? (uint8_t)EMS_LEVEL_CODE_MAX : (uint8_t)cap;
}

/* The hot path: no division, no floating point. */
static void apply_levels(ems_suit_t *s, const ems_control_t *f)
{
    uint8_t ch;
    bool clamped = false;
    for (ch = 0; ch < s->cfg.n_channels; ch++) {
        uint8_t code = ch < f->n_levels ? f->levels[ch] : 0u;
        if (code > s->cfg.max_level_code) {
            s->faults |= EMS_FAULT_LEVEL_CLAMPED;
            code = s->cfg.max_level_code;
        }
        if ((uint32_t)code * s->pulse_width_us > s->cfg.charge_limit) {
            s->faults |= EMS_FAULT_CHARGE_CLAMPED;
            code = s->charge_cap_code;
            clamped = true;
        }
        if (s->impedance[ch] == EMS_IMPEDANCE_OPEN) {
            code = 0; /* no contact: the current cannot flow */
        }
        if (code != s->level[ch]) {
            drive(s, ch, code);
        }
    }
    if (clamped) {
        s->charge_clamps++;
    }
}

/*
 * Adopt a program: outputs zero at once. The active program re-sent (same id,
 * frequency and pulse width) changes nothing, not even a status: false.
 */
static bool adopt_program(ems_suit_t *s, uint8_t id, uint8_t frequency_hz,
                          uint16_t pulse_width_us)
{
    uint8_t ch;
    if (id == s->program_id && frequency_hz == s->frequency_hz &&
        pulse_width_us == s->pulse_width_us) {
        return false; /* re-sent while the controller awaits confirmation: keep the outputs */
    }
    s->program_id = id;
    s->frequency_hz = frequency_hz;
    s->pulse_width_us = pulse_width_us;
    s->charge_cap_code = charge_cap_code(s);
    for (ch = 0; ch < s->cfg.n_channels; ch++) {
        drive(s, ch, 0); /* zero at once; the hardware learns the new pulse shape */
    }
    return true;
}

/* -- status ------------------------------------------------------------------------- */

void ems_suit_status(const ems_suit_t *s, uint32_t now_ms, ems_status_t *report)
{
    uint8_t ch;
    report->counter = s->last_counter;
    report->clock_ms = now_ms;
    report->state = s->state;
    report->battery_pct = s->battery_pct;
    report->faults = s->faults;
    report->program_id = s->program_id;
    report->frequency_hz = s->frequency_hz;
    report->pulse_width_us = s->pulse_width_us;
    report->n_channels = s->cfg.n_channels;
    for (ch = 0; ch < EMS_MAX_CHANNELS; ch++) {
        report->levels[ch] = ch < s->cfg.n_channels ? s->level[ch] : 0u;
        report->impedance[ch] = ch < s->cfg.n_channels ? s->impedance[ch] : 0u;
    }
}

uint8_t ems_suit_send_status(ems_suit_t *s, uint32_t now_ms)
{
    ems_status_t report;
    uint8_t frame[EMS_STATUS_FRAME_MAX];
    uint8_t first = 0;
    uint8_t frames = 0;

    ems_suit_status(s, now_ms, &report);
    while (first < report.n_channels) {
        uint8_t n = 0;
        size_t len = ems_encode_status(&report, first, s->cfg.att_payload, frame,
                                       sizeof frame, &n);
        if (len == 0u || n == 0u) {
            break; /* cannot happen: att_payload >= one channel is checked on the way in */
        }
        if (s->hw.notify != NULL) {
            s->hw.notify(s->hw.ctx, frame, (uint16_t)len);
        }
        first = (uint8_t)(first + n);
        frames++;
    }
    s->faults &= (uint8_t)~(EMS_FAULT_BAD_FRAME | EMS_FAULT_PROGRAM_MISMATCH);
    s->last_status_ms = now_ms;
    return frames;
}

static void status_on_change(ems_suit_t *s, uint32_t now_ms)
{
    if (s->notifying) {
        (void)ems_suit_send_status(s, now_ms);
    }
}

void ems_suit_notifications_enabled(ems_suit_t *s, uint32_t now_ms)
{
    s->notifying = true;
    (void)ems_suit_send_status(s, now_ms);
}

void ems_suit_notifications_disabled(ems_suit_t *s)
{
    s->notifying = false;
}

bool ems_suit_set_att_payload(ems_suit_t *s, uint16_t att_payload)
{
    if (att_payload < EMS_ATT_PAYLOAD_ONE_CHANNEL) {
        return false;
    }
    s->cfg.att_payload = att_payload;
    return true;
}

/* -- the state table ---------------------------------------------------------------- */

static uint8_t event_of(uint8_t type)
{
    switch (type) {
    case EMS_SET_LEVELS: return EV_SET_LEVELS;
    case EMS_SET_PROGRAM: return EV_SET_PROGRAM;
    case EMS_STOP_ALL: return EV_STOP_ALL;
    case EMS_HEARTBEAT: return EV_HEARTBEAT;
    default: return EV_ARM; /* the codec lets nothing else through */
    }
}

/* Run one event through the table; returns what happened to the frame. */
static ems_rx_t step(ems_suit_t *s, uint8_t event, const ems_control_t *f, uint32_t now_ms)
{
    const transition_t t = TRANSITIONS[s->state][event];
    const uint8_t before = s->state;
    ems_rx_t result = EMS_RX_APPLIED;
    bool program_changed = false;

    switch (t.action) {
    case DO_ZERO:
        zero_all(s);
        break;
    case DO_LEVELS:
        if (f->program_id != s->program_id) {
            s->faults |= EMS_FAULT_PROGRAM_MISMATCH;
            s->mismatched_frames++;
            result = EMS_RX_PROGRAM_MISMATCH; /* levels dropped; the frame still feeds */
        } else {
            apply_levels(s, f);
        }
        s->last_feed_ms = now_ms;
        s->fed = true;
        break;
    case DO_PROGRAM:
        program_changed =
            adopt_program(s, f->program_id, f->frequency_hz, f->pulse_width_us);
        if (!program_changed) {
            result = EMS_RX_IGNORED; /* the active program re-sent: a no-op */
        }
        break;
    case DO_ARM:
        s->faults &= (uint8_t)~(EMS_FAULT_WATCHDOG | EMS_FAULT_LEVEL_CLAMPED |
                                EMS_FAULT_CHARGE_CLAMPED);
        s->last_feed_ms = now_ms;
        s->fed = true;
        break;
    case DO_FEED:
        s->last_feed_ms = now_ms;
        s->fed = true;
        break;
    default:
        result = EMS_RX_IGNORED;
        break;
    }
    s->state = t.next;
    if (s->state != EMS_STATE_ARMED) {
        zero_all(s); /* the invariant, whatever the row says: outputs only in ARMED */
    }
    if (event == EV_WATCHDOG_EXPIRED && before != s->state) {
        s->faults |= EMS_FAULT_WATCHDOG;
        s->watchdog_trips++;
    }
    if (before != s->state || program_changed) {
        status_on_change(s, now_ms); /* a re-sent program waits for the periodic status */
    }
    return result;
}

/* -- the clock ------------------------------------------------------------------------ */

bool ems_suit_watchdog_deadline(const ems_suit_t *s, uint32_t *deadline_ms)
{
    if (s->state != EMS_STATE_ARMED || !s->fed) {
        return false;
    }
    if (deadline_ms != NULL) {
        *deadline_ms = s->last_feed_ms + s->cfg.watchdog_ms;
    }
    return true;
}

static bool check_watchdog(ems_suit_t *s, uint32_t now_ms)
{
    /* unsigned difference: right across the u32 clock's wrap (49.7 days) */
    if (s->state == EMS_STATE_ARMED && s->fed &&
        (uint32_t)(now_ms - s->last_feed_ms) >= s->cfg.watchdog_ms) {
        (void)step(s, EV_WATCHDOG_EXPIRED, NULL, now_ms);
        return true;
    }
    return false;
}

bool ems_suit_tick(ems_suit_t *s, uint32_t now_ms)
{
    bool tripped = check_watchdog(s, now_ms);
    if (s->notifying && !tripped &&
        (uint32_t)(now_ms - s->last_status_ms) >= s->cfg.status_period_ms) {
        (void)ems_suit_send_status(s, now_ms);
    }
    return tripped;
}

/* -- frames ----------------------------------------------------------------------------- */

static bool tag_ok(const ems_suit_t *s, const ems_control_t *f, const uint8_t *data, size_t len)
{
    const uint16_t signed_len = (uint16_t)(len - EMS_TAG_LEN - 2u);
    if (s->hw.verify_tag != NULL) {
        return s->hw.verify_tag(s->hw.ctx, f->key_id, data, signed_len, f->tag);
    }
    return f->key_id == 0u; /* no key enrolled: only key id 0 */
}

/* The counter, then the state table; `moves_counter` false for an unsigned stop. */
static ems_rx_t accept(ems_suit_t *s, const ems_control_t *f, bool moves_counter, uint32_t now_ms)
{
    if (f->counter <= s->last_counter) {
        if (f->type != EMS_STOP_ALL) {
            s->stale_frames++;
            return EMS_RX_STALE; /* delayed frames are normal on a radio: no flag */
        }
        /* STOP_ALL is honoured whatever its counter: a replay can only make it safer */
    } else if (moves_counter) {
        s->last_counter = f->counter;
    }
    return step(s, event_of(f->type), f, now_ms);
}

ems_rx_t ems_suit_receive(ems_suit_t *s, const uint8_t *data, size_t len, uint32_t now_ms)
{
    ems_control_t f;
    ems_rx_t r;

    (void)check_watchdog(s, now_ms);
    r = ems_decode_control(data, len, &f); /* key id 0 with a non-zero tag: BAD_TAG */
    if (r == EMS_RX_APPLIED && !tag_ok(s, &f, data, len)) {
        if (f.key_id == 0u) { /* unsigned, and the suit has a key */
            if (f.type == EMS_STOP_ALL) {
                return accept(s, &f, false, now_ms); /* anyone may stop it */
            }
            s->refused_frames++;
            return EMS_RX_UNAUTHENTICATED; /* counted, not flagged: nothing was corrupt */
        }
        r = EMS_RX_UNAUTHENTICATED;
    }
    if (r != EMS_RX_APPLIED) {
        s->faults |= EMS_FAULT_BAD_FRAME;
        s->bad_frames++;
        return r;
    }
    return accept(s, &f, true, now_ms);
}

ems_rx_t ems_suit_receive_stop(ems_suit_t *s, const uint8_t *data, size_t len, uint32_t now_ms)
{
    ems_control_t f;
    ems_rx_t r;

    (void)check_watchdog(s, now_ms);
    r = ems_decode_control(data, len, &f);
    if (r == EMS_RX_BAD_TAG) {
        r = EMS_RX_APPLIED; /* the stop characteristic does not judge tags */
    }
    if (r != EMS_RX_APPLIED) {
        s->faults |= EMS_FAULT_BAD_FRAME;
        s->bad_frames++;
        return r;
    }
    if (f.type != EMS_STOP_ALL) {
        s->refused_frames++;
        return EMS_RX_UNAUTHENTICATED;
    }
    r = accept(s, &f, f.key_id != 0u && tag_ok(s, &f, data, len), now_ms);
    return r == EMS_RX_IGNORED ? EMS_RX_APPLIED : r;
}

/* -- power on and the body ------------------------------------------------------------- */

void ems_config_default(ems_config_t *cfg, uint8_t n_channels)
{
    cfg->n_channels = n_channels;
    cfg->max_level_code = EMS_LEVEL_CODE_MAX;
    cfg->watchdog_ms = EMS_WATCHDOG_MS_DEFAULT;
    cfg->charge_limit = EMS_CHARGE_LIMIT_DEFAULT;
    cfg->att_payload = EMS_ATT_PAYLOAD_MIN;
    cfg->status_period_ms = EMS_STATUS_PERIOD_MS_DEFAULT;
    cfg->default_frequency_hz = EMS_DEFAULT_FREQUENCY_HZ;
    cfg->default_pulse_width_us = EMS_DEFAULT_PULSE_WIDTH_US;
}

bool ems_suit_init(ems_suit_t *s, const ems_config_t *cfg, const ems_hw_t *hw, uint32_t now_ms)
{
    uint8_t ch;
    if (s == NULL || cfg == NULL || cfg->n_channels == 0u ||
        cfg->n_channels > EMS_MAX_CHANNELS || cfg->max_level_code > EMS_LEVEL_CODE_MAX ||
        cfg->watchdog_ms == 0u || cfg->status_period_ms == 0u ||
        cfg->att_payload < EMS_ATT_PAYLOAD_ONE_CHANNEL ||
        cfg->default_frequency_hz < EMS_FREQUENCY_MIN_HZ ||
        cfg->default_frequency_hz > EMS_FREQUENCY_MAX_HZ ||
        cfg->default_pulse_width_us < EMS_PULSE_WIDTH_MIN_US ||
        cfg->default_pulse_width_us > EMS_PULSE_WIDTH_MAX_US) {
        return false;
    }
    s->cfg = *cfg;
    if (hw != NULL) {
        s->hw = *hw;
    } else {
        s->hw.set_channel = NULL;
        s->hw.notify = NULL;
        s->hw.verify_tag = NULL;
        s->hw.ctx = NULL;
    }
    s->state = EMS_STATE_IDLE;
    s->faults = 0;
    s->battery_pct = 100;
    s->program_id = 0;
    s->frequency_hz = cfg->default_frequency_hz;
    s->pulse_width_us = cfg->default_pulse_width_us;
    s->charge_cap_code = charge_cap_code(s);
    s->last_counter = 0;
    s->last_feed_ms = now_ms;
    s->last_status_ms = now_ms;
    s->fed = false;
    s->notifying = false;
    s->bad_frames = 0;
    s->stale_frames = 0;
    s->mismatched_frames = 0;
    s->watchdog_trips = 0;
    s->charge_clamps = 0;
    s->refused_frames = 0;
    for (ch = 0; ch < EMS_MAX_CHANNELS; ch++) {
        s->level[ch] = 0;
        s->impedance[ch] = EMS_IMPEDANCE_UNKNOWN;
    }
    for (ch = 0; ch < s->cfg.n_channels; ch++) {
        drive(s, ch, 0);
    }
    return true;
}

static void update_electrode_flag(ems_suit_t *s)
{
    uint8_t ch;
    s->faults &= (uint8_t)~EMS_FAULT_ELECTRODE_OPEN;
    for (ch = 0; ch < s->cfg.n_channels; ch++) {
        if (s->impedance[ch] == EMS_IMPEDANCE_OPEN) {
            s->faults |= EMS_FAULT_ELECTRODE_OPEN;
        }
    }
}

void ems_suit_set_contact(ems_suit_t *s, uint8_t channel, uint8_t impedance_code,
                          uint32_t now_ms)
{
    bool was_open;
    if (channel >= s->cfg.n_channels) {
        return;
    }
    was_open = s->impedance[channel] == EMS_IMPEDANCE_OPEN;
    s->impedance[channel] = impedance_code;
    if (impedance_code == EMS_IMPEDANCE_OPEN && s->level[channel] != 0u) {
        drive(s, channel, 0);
    }
    update_electrode_flag(s);
    if (was_open != (impedance_code == EMS_IMPEDANCE_OPEN)) {
        status_on_change(s, now_ms);
    }
}

void ems_suit_set_battery(ems_suit_t *s, uint8_t pct)
{
    s->battery_pct = pct > 100u ? 100u : pct;
    if (s->battery_pct < EMS_LOW_BATTERY_PCT) {
        s->faults |= EMS_FAULT_LOW_BATTERY;
    } else {
        s->faults &= (uint8_t)~EMS_FAULT_LOW_BATTERY;
    }
}

bool ems_suit_set_watchdog_ms(ems_suit_t *s, uint16_t watchdog_ms)
{
    if (watchdog_ms == 0u) {
        return false;
    }
    s->cfg.watchdog_ms = watchdog_ms;
    return true;
}

/* -- read-only views ----------------------------------------------------------------------- */

ems_state_t ems_suit_state(const ems_suit_t *s) { return (ems_state_t)s->state; }
uint8_t ems_suit_faults(const ems_suit_t *s) { return s->faults; }
uint16_t ems_suit_watchdog_ms(const ems_suit_t *s) { return s->cfg.watchdog_ms; }
uint8_t ems_suit_battery(const ems_suit_t *s) { return s->battery_pct; }
uint32_t ems_suit_last_counter(const ems_suit_t *s) { return s->last_counter; }
uint32_t ems_suit_bad_frames(const ems_suit_t *s) { return s->bad_frames; }
uint32_t ems_suit_stale_frames(const ems_suit_t *s) { return s->stale_frames; }
uint32_t ems_suit_mismatched_frames(const ems_suit_t *s) { return s->mismatched_frames; }
uint32_t ems_suit_watchdog_trips(const ems_suit_t *s) { return s->watchdog_trips; }
uint32_t ems_suit_charge_clamps(const ems_suit_t *s) { return s->charge_clamps; }
uint32_t ems_suit_refused_frames(const ems_suit_t *s) { return s->refused_frames; }
size_t ems_suit_sizeof(void) { return sizeof(ems_suit_t); }
size_t ems_config_sizeof(void) { return sizeof(ems_config_t); }
size_t ems_hw_sizeof(void) { return sizeof(ems_hw_t); }
size_t ems_control_sizeof(void) { return sizeof(ems_control_t); }
size_t ems_status_sizeof(void) { return sizeof(ems_status_t); }
size_t ems_auth_sizeof(void) { return sizeof(ems_auth_t); }

uint8_t ems_suit_level(const ems_suit_t *s, uint8_t channel)
{
    return channel < s->cfg.n_channels ? s->level[channel] : 0u;
}

uint8_t ems_suit_impedance(const ems_suit_t *s, uint8_t channel)
{
    return channel < s->cfg.n_channels ? s->impedance[channel] : 0u;
}

void ems_suit_program(const ems_suit_t *s, uint8_t *program_id, uint8_t *frequency_hz,
                      uint16_t *pulse_width_us)
{
    if (program_id != NULL) {
        *program_id = s->program_id;
    }
    if (frequency_hz != NULL) {
        *frequency_hz = s->frequency_hz;
    }
    if (pulse_width_us != NULL) {
        *pulse_width_us = s->pulse_width_us;
    }
}

bool ems_suit_last_feed(const ems_suit_t *s, uint32_t *feed_ms)
{
    if (!s->fed) {
        return false;
    }
    if (feed_ms != NULL) {
        *feed_ms = s->last_feed_ms;
    }
    return true;
}
