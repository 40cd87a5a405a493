/* The Ding et al. (2003) muscle model over n muscles: the arithmetic of
 * sim/body/ding.py (DingMuscles.step, .pulse, .settle_fatigue) in C, loaded
 * with ctypes by sim/body/kernel.py.
 *
 * Same operations in the same order as the numpy code, IEEE double, no fast
 * math and no contraction into fused multiply-adds (-ffp-contract=off), so the
 * only difference is the last bit of exp(); tests/test_body_speed.py checks it
 * against the code it replaced. The scalars that depend on the step only (the
 * exponentials of S and CN) are computed by the caller, once per step.
 */

#include <math.h>
#include <stddef.h>

typedef struct {
    size_t n;
    double *s, *cn, *force, *a, *km, *tau1, *last_pulse, *f_sum, *r0_minus_1;
} ding_state;

/* Advance every muscle by h seconds with no pulse inside the step.
 * c_half = 0.5 h / tau_c, e_half = exp(-c_half), c_full = h / tau_c,
 * e = exp(-c_full); fatigue: fold the mean force over the step into f_sum. */
void ding_step(const ding_state *m, double h, double c_half, double e_half, double c_full,
               double e, double tau2, int fatigue)
{
    for (size_t i = 0; i < m->n; i++) {
        double s = m->s[i];
        double x = (s * c_half + m->cn[i]) * e_half; /* CN at the step's midpoint */
        x = x / (m->km[i] + x);
        double tau = x * tau2 + m->tau1[i];
        double f_ss = m->a[i] * x * tau;
        double f_old = m->force[i];
        double f_new = (f_old - f_ss) * exp(-h / tau) + f_ss;
        m->force[i] = f_new;
        m->cn[i] = (m->cn[i] + s * c_full) * e;
        m->s[i] = s * e;
        if (fatigue) {
            m->f_sum[i] += (f_old + f_new) * 0.5 * h;
        }
    }
}

/* A pulse at time t on the muscles whose mask byte is not 0 (all if mask is NULL). */
void ding_pulse(const ding_state *m, double t, const unsigned char *mask, double tau_c)
{
    for (size_t i = 0; i < m->n; i++) {
        if (mask != NULL && !mask[i]) {
            continue;
        }
        double gap = t - m->last_pulse[i];
        m->s[i] += exp(-gap / tau_c) * m->r0_minus_1[i] + 1.0;
        m->last_pulse[i] = t;
    }
}

/* Apply the fatigue of the mean force f_sum / h held over h seconds;
 * decay = exp(-h / tau_fat), one_minus = 1 - decay. */
void ding_settle(const ding_state *m, double h, double decay, double one_minus, double a_rest,
                 double km_rest, double tau1_rest, double alpha_a, double alpha_km,
                 double alpha_tau1, double tau_fat)
{
    for (size_t i = 0; i < m->n; i++) {
        double f = m->f_sum[i] / h;
        m->a[i] = m->a[i] * decay + (a_rest + alpha_a * f * tau_fat) * one_minus;
        m->km[i] = m->km[i] * decay + (km_rest + alpha_km * f * tau_fat) * one_minus;
        m->tau1[i] = m->tau1[i] * decay + (tau1_rest + alpha_tau1 * f * tau_fat) * one_minus;
        m->r0_minus_1[i] = m->km[i] + 1.04 - 1.0;
        m->f_sum[i] = 0.0;
    }
}
