/*
 * ems_suit.h -- the suit side of the suit protocol, version 2, in portable C.
 *
 * Theory of operation
 * -------------------
 * The suit trusts nothing. Its outputs are non-zero only in state ARMED, and
 * only after a valid, authentic, fresh SET_LEVELS frame for the program the
 * suit is applying. Every level is clamped to the suit's own maximum current
 * and to its own charge limit per phase at the active pulse width (the last
 * line of safety invariant S1: it holds even if a controller is wrong). A
 * watchdog zeroes every output and enters WATCHDOG when no SET_LEVELS,
 * HEARTBEAT or ARM arrived for the watchdog time (S4); STOP_ALL zeroes every
 * output and latches (S3) and is honoured whatever its counter. Both need an
 * explicit ARM to stimulate again. A corrupt frame is dropped and flagged; it
 * never changes an output.
 *
 * Every transition is in one table (`ems_suit.c`, TRANSITIONS), so the rules
 * can be read in one place, next to docs/protocol.md.
 *
 * The core is C99 with no OS, no dynamic memory and no floating point: levels
 * are 0.5 mA codes and the charge limit is integer arithmetic
 * (code x pulse width in us <= 90000 is 45 uC). All state is in one
 * `ems_suit_t` the application allocates (statically) and passes by pointer.
 * Time comes in as a millisecond clock argument (`now_ms`, wrapping u32,
 * compared by unsigned difference), so the core never reads a clock itself.
 * The hardware is reached only through `ems_hw_t`'s callbacks. The core is
 * not re-entrant: call it from one context (or under one lock).
 *
 * See docs/firmware.md for how to port it to a BLE stack.
 */
#ifndef EMS_SUIT_H
#define EMS_SUIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* -- the wire (docs/protocol.md) ---------------------------------------------- */

#define EMS_PROTOCOL_VERSION 2u
/** Most channels a suit (and a SET_LEVELS frame) can carry. */
#define EMS_MAX_CHANNELS 32u
/** Largest valid level code: 240 x 0.5 mA = 120 mA. */
#define EMS_LEVEL_CODE_MAX 240u
/** Authentication tag length, bytes. */
#define EMS_TAG_LEN 8u
/** Control frame header: version|type, counter u32, key id. */
#define EMS_CONTROL_HEADER_LEN 6u
/** Header + tag + CRC: the size of a control frame without payload. */
#define EMS_CONTROL_OVERHEAD (EMS_CONTROL_HEADER_LEN + EMS_TAG_LEN + 2u)
/** Longest control frame: a 32-channel SET_LEVELS. */
#define EMS_CONTROL_FRAME_MAX (EMS_CONTROL_OVERHEAD + 2u + EMS_MAX_CHANNELS)
/** Status frame without channels (header 18 + CRC 2). */
#define EMS_STATUS_OVERHEAD 20u
/** Longest status frame: every channel of a 32-channel suit. */
#define EMS_STATUS_FRAME_MAX (EMS_STATUS_OVERHEAD + 2u * EMS_MAX_CHANNELS)
/** The ATT payload version 2 needs (ATT MTU 67). */
#define EMS_ATT_PAYLOAD_MIN 64u
/** The smallest payload the core can split a status into (one channel). */
#define EMS_ATT_PAYLOAD_ONE_CHANNEL (EMS_STATUS_OVERHEAD + 2u)
/** Status frame type byte: version 2, type STATUS (0x8). */
#define EMS_STATUS_TYPE_BYTE 0x28u

/** Program ranges (inclusive). */
#define EMS_FREQUENCY_MIN_HZ 1u
#define EMS_FREQUENCY_MAX_HZ 150u
#define EMS_PULSE_WIDTH_MIN_US 50u
#define EMS_PULSE_WIDTH_MAX_US 450u

/** Contact impedance codes (20 ohm units). */
#define EMS_IMPEDANCE_UNKNOWN 0u
#define EMS_IMPEDANCE_OPEN 255u
#define EMS_IMPEDANCE_UNIT_OHM 20u

/* -- defaults ------------------------------------------------------------------ */

/** Watchdog time, ms (S4). */
#define EMS_WATCHDOG_MS_DEFAULT 250u
/** Status at least 5 times a second. */
#define EMS_STATUS_PERIOD_MS_DEFAULT 200u
/** 45 uC per phase: level code (0.5 mA) x pulse width (us) <= 90000. */
#define EMS_CHARGE_LIMIT_DEFAULT 90000u
/** Power-on program: id 0, 85 Hz, 350 us (the typical WB-EMS program). */
#define EMS_DEFAULT_FREQUENCY_HZ 85u
#define EMS_DEFAULT_PULSE_WIDTH_US 350u
/** LOW_BATTERY is raised under this percentage. */
#define EMS_LOW_BATTERY_PCT 15u

/** Control frame types (low nibble of byte 0). */
typedef enum {
    EMS_SET_LEVELS = 0x1,
    EMS_SET_PROGRAM = 0x2,
    EMS_STOP_ALL = 0x3,
    EMS_HEARTBEAT = 0x4,
    EMS_ARM = 0x5,
    EMS_STATUS = 0x8
} ems_frame_type_t;

/** The suit's state, as reported in status frames. */
typedef enum {
    EMS_STATE_IDLE = 0,     /* powered on, outputs zero, waits for ARM */
    EMS_STATE_ARMED = 1,    /* applies levels */
    EMS_STATE_STOPPED = 2,  /* STOP_ALL latched: zero until ARM */
    EMS_STATE_WATCHDOG = 3  /* watchdog tripped: zero until ARM */
} ems_state_t;

/** Fault flags in status frames. */
#define EMS_FAULT_WATCHDOG 0x01u         /* tripped since the last ARM */
#define EMS_FAULT_LOW_BATTERY 0x02u      /* battery under 15 % */
#define EMS_FAULT_ELECTRODE_OPEN 0x04u   /* a channel has no contact */
#define EMS_FAULT_LEVEL_CLAMPED 0x08u    /* clamped to own maximum; until ARM */
#define EMS_FAULT_BAD_FRAME 0x10u        /* corrupt frame dropped; until reported */
#define EMS_FAULT_PROGRAM_MISMATCH 0x20u /* levels for another program; until reported */
#define EMS_FAULT_CHARGE_CLAMPED 0x40u   /* clamped to own charge limit; until ARM */

/** What `ems_suit_receive` (and `ems_decode_control`) did with a frame. */
typedef enum {
    EMS_RX_APPLIED = 0,          /* valid and fresh: the state table handled it */
    EMS_RX_IGNORED = 1,          /* valid and fresh, nothing to do in this state */
    EMS_RX_STALE = 2,            /* counter not newer than the last accepted: dropped, no flag */
    EMS_RX_PROGRAM_MISMATCH = 3, /* SET_LEVELS for another program: dropped, flagged */
    EMS_RX_BAD_LENGTH = 4,       /* the rest are corrupt frames: dropped, BAD_FRAME */
    EMS_RX_BAD_CRC = 5,
    EMS_RX_BAD_VERSION = 6,
    EMS_RX_BAD_TYPE = 7,
    EMS_RX_BAD_PAYLOAD = 8,      /* a field out of range (level code > 240, program, n) */
    EMS_RX_BAD_TAG = 9,          /* key id 0 with a non-zero tag */
    EMS_RX_UNAUTHENTICATED = 10  /* the tag hook refused it (or no key is enrolled) */
} ems_rx_t;

/* -- the frame codec (pure: no state, no hardware) ----------------------------- */

/** A decoded control frame. */
typedef struct {
    uint8_t type;            /* ems_frame_type_t */
    uint32_t counter;
    uint8_t key_id;
    uint8_t program_id;      /* SET_LEVELS, SET_PROGRAM */
    uint8_t n_levels;        /* SET_LEVELS: 1..32 */
    uint8_t levels[EMS_MAX_CHANNELS];
    uint8_t frequency_hz;    /* SET_PROGRAM */
    uint16_t pulse_width_us; /* SET_PROGRAM */
    uint8_t tag[EMS_TAG_LEN];
} ems_control_t;

/** One status report (the whole suit); split into frames by `ems_encode_status`. */
typedef struct {
    uint32_t counter;  /* last accepted control frame counter */
    uint32_t clock_ms; /* the suit's clock */
    uint8_t state;
    uint8_t battery_pct;
    uint8_t faults;
    uint8_t program_id;
    uint8_t frequency_hz;
    uint16_t pulse_width_us;
    uint8_t n_channels;
    uint8_t levels[EMS_MAX_CHANNELS];
    uint8_t impedance[EMS_MAX_CHANNELS];
} ems_status_t;

/** CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF); 0x29B1 for "123456789". */
uint16_t ems_crc16(const uint8_t *data, size_t len);

/**
 * Decode and validate one control frame: length, CRC, version, type, the
 * type's length, every field's range, and that a key id 0 frame's tag is 8
 * zero bytes (EMS_RX_BAD_TAG). Neither the counter nor a key's tag is judged
 * here (that is the suit's state and its hook). Returns EMS_RX_APPLIED on success
 * (and fills `out`), else the reason (`out` is then unspecified).
 */
ems_rx_t ems_decode_control(const uint8_t *data, size_t len, ems_control_t *out);

/**
 * Encode the status frame of `report`'s channels from `first_channel`, as
 * many as fit `att_payload` bytes. Returns the frame length (20 + 2n) and the
 * number of channels in `*n_out`; 0 if `out_size` or `att_payload` is too
 * small for one channel or `first_channel` is past the last channel.
 */
size_t ems_encode_status(const ems_status_t *report, uint8_t first_channel,
                         uint16_t att_payload, uint8_t *out, size_t out_size,
                         uint8_t *n_out);

/* -- the hardware interface ----------------------------------------------------- */

/**
 * Drive one output: peak current `level_code` x 0.5 mA, symmetric biphasic
 * pulses of `pulse_width_us` per phase at `frequency_hz`. Level 0 means no
 * current. Called only when a channel's output changes; must take effect at
 * once (it is how STOP_ALL and the watchdog zero the outputs).
 */
typedef void (*ems_set_channel_fn)(void *ctx, uint8_t channel, uint8_t level_code,
                                   uint16_t pulse_width_us, uint8_t frequency_hz);
/** Send one status frame as a GATT notification on the status characteristic. */
typedef void (*ems_notify_fn)(void *ctx, const uint8_t *frame, uint16_t len);
/**
 * THE AUTHENTICATION HOOK (for the suit-security work): return true if `tag`
 * is the first 8 bytes of HMAC-SHA-256(key `key_id`, signed bytes). It is
 * asked about every frame that passed the codec, key id 0 included (after the
 * core checked that a key id 0 frame's tag is 8 zero bytes), so a suit with
 * an enrolled key can refuse unsigned frames. NULL (the default): no key is
 * enrolled, and the suit accepts key id 0 only.
 */
typedef bool (*ems_verify_tag_fn)(void *ctx, uint8_t key_id, const uint8_t *signed_bytes,
                                  uint16_t signed_len, const uint8_t tag[EMS_TAG_LEN]);

/** The hardware behind the core; any callback may be NULL. */
typedef struct {
    ems_set_channel_fn set_channel;
    ems_notify_fn notify;
    ems_verify_tag_fn verify_tag;
    void *ctx; /* passed to every callback */
} ems_hw_t;

/** A suit's own build-time facts. Start from `ems_config_default`. */
typedef struct {
    uint8_t n_channels;              /* 1..32 */
    uint8_t max_level_code;          /* own maximum current, 0.5 mA codes, <= 240 */
    uint16_t watchdog_ms;            /* >= 1; 250 */
    uint32_t charge_limit;           /* own charge limit: code x us; 90000 = 45 uC */
    uint16_t att_payload;            /* notification payload, >= 22; 64 */
    uint16_t status_period_ms;       /* >= 1; 200 */
    uint8_t default_frequency_hz;    /* program 0 (power on) */
    uint16_t default_pulse_width_us; /* program 0 (power on) */
} ems_config_t;

/** The whole state of one suit. Allocate it yourself; the fields are private. */
typedef struct {
    ems_config_t cfg;
    ems_hw_t hw;
    uint8_t state;
    uint8_t faults;
    uint8_t battery_pct;
    uint8_t program_id;
    uint8_t frequency_hz;
    uint16_t pulse_width_us;
    uint8_t charge_cap_code;  /* the largest code within the charge limit at this width */
    uint32_t last_counter;
    uint32_t last_feed_ms;
    uint32_t last_status_ms;
    bool fed;
    bool notifying;
    uint8_t level[EMS_MAX_CHANNELS];
    uint8_t impedance[EMS_MAX_CHANNELS];
    uint32_t bad_frames;
    uint32_t stale_frames;
    uint32_t mismatched_frames;
    uint32_t watchdog_trips;
    uint32_t charge_clamps;
    uint32_t refused_frames; /* well-formed, unsigned, refused by an enrolled suit */
} ems_suit_t;

/* -- authentication (ems_auth.c; docs/security.md) ------------------------------------ */

/** SHA-256 digest length, bytes. */
#define EMS_SHA256_LEN 32u
/** A suit key, bytes (random, made by the studio at enrollment). */
#define EMS_KEY_LEN 32u
/** A studio id, bytes. */
#define EMS_STUDIO_ID_LEN 16u

/** An incremental SHA-256 (FIPS 180-4). */
typedef struct {
    uint32_t h[8];
    uint64_t bytes;
    uint8_t buf[64];
    uint8_t used;
} ems_sha256_t;

void ems_sha256_init(ems_sha256_t *c);
void ems_sha256_update(ems_sha256_t *c, const uint8_t *data, size_t len);
void ems_sha256_final(ems_sha256_t *c, uint8_t out[EMS_SHA256_LEN]);
/** HMAC-SHA-256 (RFC 2104); a frame's tag is its first EMS_TAG_LEN bytes. */
void ems_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *msg, size_t len,
                     uint8_t out[EMS_SHA256_LEN]);
/** Compare in time independent of where the bytes differ. */
bool ems_equal_ct(const uint8_t *a, const uint8_t *b, size_t n);

typedef struct ems_auth ems_auth_t;
/**
 * THE KEY STORAGE HOOK: write `auth` (enrolled, key id, key, studio id) to
 * non-volatile memory; called after every change (enroll, rotate, forget,
 * factory reset) before the suit answers. At power on, read it back and call
 * `ems_auth_restore`. NULL: the key lives in RAM only (lost at power off).
 */
typedef void (*ems_store_fn)(void *ctx, const ems_auth_t *auth);

/** What the suit knows of its studio. Allocate it yourself; pass it as `ems_hw_t.ctx`'s auth. */
struct ems_auth {
    bool enrolled;
    uint8_t key_id;                       /* 1..255 while enrolled */
    uint8_t key[EMS_KEY_LEN];
    uint8_t studio_id[EMS_STUDIO_ID_LEN];
    ems_store_fn store;
    void *store_ctx;
    uint32_t refused;                     /* enrollment messages refused since power on */
};

/** The answer to an enrollment message: 0, or the ATT application error to answer with. */
typedef enum {
    EMS_ENROLL_OK = 0x00,
    EMS_ENROLL_ELSEWHERE = 0x80,    /* enrolled in another studio */
    EMS_ENROLL_ALREADY_HERE = 0x81, /* enrolled in this studio already */
    EMS_ENROLL_NOT_ENROLLED = 0x82, /* ROTATE / FORGET with no key */
    EMS_ENROLL_BAD_PROOF = 0x83,    /* the proof is not under the current key */
    EMS_ENROLL_MALFORMED = 0x84     /* length, type, key id 0 or unchanged */
} ems_enroll_t;

/** Factory state: no key (an open suit). */
void ems_auth_init(ems_auth_t *auth, ems_store_fn store, void *store_ctx);
/** Power on with a key read back from flash; false (unchanged) for key id 0. */
bool ems_auth_restore(ems_auth_t *auth, uint8_t key_id, const uint8_t key[EMS_KEY_LEN],
                      const uint8_t studio_id[EMS_STUDIO_ID_LEN]);
/**
 * One message written to the enrollment characteristic (only over an
 * encrypted link bonded with the setup code: the BLE stack's job). On a
 * refusal nothing changes.
 */
ems_enroll_t ems_auth_handle(ems_auth_t *auth, const uint8_t *msg, size_t len);
/** The reset button: wipe the key and the studio id (the stack forgets its bonds). */
void ems_auth_factory_reset(ems_auth_t *auth);
/**
 * A ready-made `ems_verify_tag_fn` with `ctx` an `ems_auth_t *`: key id 0
 * verifies only on an open suit; otherwise the enrolled key id and its
 * HMAC-SHA-256 tag (constant-time compare).
 */
bool ems_auth_verify_tag(void *ctx, uint8_t key_id, const uint8_t *signed_bytes,
                         uint16_t signed_len, const uint8_t tag[EMS_TAG_LEN]);

/** The defaults above for a suit of `n_channels`. */
void ems_config_default(ems_config_t *cfg, uint8_t n_channels);

/**
 * Power on: state IDLE, program 0, counter 0, every output driven to zero
 * (set_channel once per channel), contact unknown, battery 100 %. Returns
 * false (and leaves `suit` unusable) if `cfg` is out of range.
 */
bool ems_suit_init(ems_suit_t *suit, const ems_config_t *cfg, const ems_hw_t *hw,
                   uint32_t now_ms);

/**
 * Handle one control frame written to the control characteristic. Checks the
 * watchdog first, then the frame (codec, tag, counter), then runs the state
 * table. Notifies a status at once when the state or the program changed and
 * notifications are enabled. With a verify_tag hook that refuses key id 0
 * (an enrolled suit): an unsigned frame is refused (EMS_RX_UNAUTHENTICATED,
 * counted in refused_frames, not flagged) except STOP_ALL, honoured whatever
 * its counter without moving the counter; a signed frame whose tag fails is
 * EMS_RX_UNAUTHENTICATED and flagged BAD_FRAME. Only a verified frame moves
 * the counter (an unsigned one too on an open suit).
 */
ems_rx_t ems_suit_receive(ems_suit_t *suit, const uint8_t *data, size_t len, uint32_t now_ms);

/**
 * Bytes written to the stop characteristic (no encryption; anyone may):
 * only a STOP_ALL with a valid length, CRC, version and type acts, whatever
 * its counter, key id and tag; it moves the counter only if its tag verifies.
 * Returns EMS_RX_APPLIED if it stopped the suit; anything else changes
 * nothing (a corrupt frame flags BAD_FRAME; another type is EMS_RX_UNAUTHENTICATED).
 */
ems_rx_t ems_suit_receive_stop(ems_suit_t *suit, const uint8_t *data, size_t len,
                               uint32_t now_ms);

/**
 * Run the clock: trip the watchdog when its time is up (zero at once, status
 * at once) and send the periodic status. Call it periodically (its period is
 * the watchdog's precision: every 5 ms trips it 250..255 ms after the last
 * feed), or from a one-shot timer at `ems_suit_watchdog_deadline` plus one
 * every status period. Returns true if the watchdog tripped in this call.
 */
bool ems_suit_tick(ems_suit_t *suit, uint32_t now_ms);

/** When the watchdog trips if nothing feeds it; false if it cannot trip (not ARMED). */
bool ems_suit_watchdog_deadline(const ems_suit_t *suit, uint32_t *deadline_ms);

/** The controller enabled notifications (CCCD written): status at once, then periodic. */
void ems_suit_notifications_enabled(ems_suit_t *suit, uint32_t now_ms);
/** The link is gone (or notifications were disabled): no more notifications. */
void ems_suit_notifications_disabled(ems_suit_t *suit);

/** The negotiated ATT payload (MTU - 3). False (unchanged) if under one channel's frame. */
bool ems_suit_set_att_payload(ems_suit_t *suit, uint16_t att_payload);

/**
 * Notify one whole status report now (split to the ATT payload), whether or
 * not notifications are enabled; clears BAD_FRAME and PROGRAM_MISMATCH (they
 * have been reported). Returns the number of frames notified.
 */
uint8_t ems_suit_send_status(ems_suit_t *suit, uint32_t now_ms);

/** The report `ems_suit_send_status` would send now (clears nothing). */
void ems_suit_status(const ems_suit_t *suit, uint32_t now_ms, ems_status_t *report);

/**
 * A channel's measured contact impedance (20 ohm units; EMS_IMPEDANCE_OPEN
 * = no contact, which zeroes that output at once and raises ELECTRODE_OPEN;
 * levels resume with the next SET_LEVELS once it has contact again).
 */
void ems_suit_set_contact(ems_suit_t *suit, uint8_t channel, uint8_t impedance_code,
                          uint32_t now_ms);

/** Battery level, percent (clamped to 100); LOW_BATTERY under 15 %. */
void ems_suit_set_battery(ems_suit_t *suit, uint8_t pct);

/** Change the watchdog time (ms, >= 1); false if out of range. */
bool ems_suit_set_watchdog_ms(ems_suit_t *suit, uint16_t watchdog_ms);
/** The watchdog time, ms. */
uint16_t ems_suit_watchdog_ms(const ems_suit_t *suit);

/* -- read-only views (diagnostics, tests, the Python binding) --------------------- */

ems_state_t ems_suit_state(const ems_suit_t *suit);
uint8_t ems_suit_faults(const ems_suit_t *suit);
/** The level code applied on `channel` now (0 outside the suit). */
uint8_t ems_suit_level(const ems_suit_t *suit, uint8_t channel);
uint8_t ems_suit_impedance(const ems_suit_t *suit, uint8_t channel);
uint8_t ems_suit_battery(const ems_suit_t *suit);
/** The active program: id (0 = power-on default), frequency, pulse width. */
void ems_suit_program(const ems_suit_t *suit, uint8_t *program_id, uint8_t *frequency_hz,
                      uint16_t *pulse_width_us);
uint32_t ems_suit_last_counter(const ems_suit_t *suit);
/** When SET_LEVELS, HEARTBEAT or ARM last fed the watchdog; false if never. */
bool ems_suit_last_feed(const ems_suit_t *suit, uint32_t *feed_ms);
/** Counts since power on. */
uint32_t ems_suit_bad_frames(const ems_suit_t *suit);
uint32_t ems_suit_stale_frames(const ems_suit_t *suit);
uint32_t ems_suit_mismatched_frames(const ems_suit_t *suit);
uint32_t ems_suit_watchdog_trips(const ems_suit_t *suit);
/** SET_LEVELS frames the suit's own charge limit had to clamp (since power on). */
uint32_t ems_suit_charge_clamps(const ems_suit_t *suit);
/** Unsigned frames an enrolled suit refused (since power on). */
uint32_t ems_suit_refused_frames(const ems_suit_t *suit);

/** The structs' sizes, for bindings (ctypes) that allocate or mirror them. */
size_t ems_suit_sizeof(void);
size_t ems_config_sizeof(void);
size_t ems_hw_sizeof(void);
size_t ems_control_sizeof(void);
size_t ems_status_sizeof(void);
size_t ems_auth_sizeof(void);

#ifdef __cplusplus
}
#endif

#endif /* EMS_SUIT_H */
