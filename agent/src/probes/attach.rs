//! Attaches every hook of the catalog through its fallback chain and reports what happened to
//! each.
//!
//! The send-reset hooks are one decision: either the `tcp:tcp_send_reset` tracepoint (which
//! names the reason and sees resets sent without a socket on Linux ≥ 6.10) or the three function
//! probes on the functions that send resets. A reason-blind tracepoint (before 6.10) misses
//! refused connects, so it ranks below the function probes and is only kept when they all fail.

use anyhow::Result;
use aya::{
    Btf, Ebpf,
    programs::{BtfTracePoint, FEntry, KProbe, ProgramError, TracePoint},
};
use tcpwhy_common::layout::{ABSENT, KernelLayout};

use super::{
    attach_error::AttachError,
    capability::Capability,
    catalog::{self, Attachment, HOOKS, Hook, Point},
    method::Method,
    report::ProbeReport,
};

/// What the attach step needs to know about the kernel.
pub struct AttachPlan<'a> {
    /// Methods allowed, in order of preference.
    pub methods: &'a [Method],
    pub btf: Option<&'a Btf>,
    /// The classic and BTF `tcp_send_reset` tracepoints carry the reset reason.
    pub tracepoint_has_reason: bool,
    /// `skb:kfree_skb` carries the drop reason (Linux ≥ 5.17).
    pub drops_have_reason: bool,
    pub layout: &'a KernelLayout,
}

/// Attaches everything it can; the reports say what attached and why the rest did not.
pub fn attach_all(ebpf: &mut Ebpf, plan: &AttachPlan) -> Vec<ProbeReport> {
    let mut reports = attach_send_reset(ebpf, plan);
    // Where the exact queue probes cannot attach, queue drops still come from the namespace
    // counters and sock_diag.
    for hook in HOOKS
        .iter()
        .filter(|h| h.capability != Capability::ResetsSent)
    {
        let report = if let Some(why) = done_by_another(hook, plan, &reports) {
            ProbeReport::standby(hook.name, why)
        } else if let Some(why) = unusable(hook, plan) {
            ProbeReport::failed(hook.name, None, why.to_string())
        } else {
            attach_chain(ebpf, plan, hook)
        };
        reports.push(report);
    }
    reports
}

/// What an attached hook already does of this one's job, if it does all of it: the BTF
/// state-change program reads listen()'s backlog where the system call's registers are
/// readable, which spares the host a syscall tracepoint (see `listen_backlog` in the programs).
fn done_by_another(hook: &Hook, plan: &AttachPlan, reports: &[ProbeReport]) -> Option<String> {
    let state_change = &catalog::SET_STATE;
    let reads_listen_registers = plan.layout.regs_syscall_nr != ABSENT
        && reports
            .iter()
            .any(|r| r.attached && r.name == state_change.name && r.method == Some(Method::TpBtf));
    (hook.name == catalog::LISTEN.name && reads_listen_registers).then(|| {
        format!(
            "{} (tp_btf) reads each listen()'s backlog from its registers",
            state_change.name
        )
    })
}

/// Why a hook is not worth attaching on this kernel, if it is not.
fn unusable(hook: &Hook, plan: &AttachPlan) -> Option<&'static str> {
    let netfilter_segment = |position: u32| {
        (position == ABSENT).then_some(
            "its netfilter module is not loaded (no REJECT rule yet): firewall resets are \
             inferred instead, and a restart after the first rule names them exactly",
        )
    };
    match hook.name {
        // Every packet the host frees would run the program, to count nothing.
        _ if hook.capability == Capability::Drops && !plan.drops_have_reason => Some(
            "this kernel frees packets without a drop reason (Linux < 5.17): TCP drops are not \
             counted",
        ),
        name if name == catalog::NF_SEND_RESET.name => {
            netfilter_segment(plan.layout.nf_send_reset_skb_arg)
        }
        name if name == catalog::NF_SEND_RESET6.name => {
            netfilter_segment(plan.layout.nf_send_reset6_skb_arg)
        }
        _ => None,
    }
}

fn reset_functions() -> impl Iterator<Item = &'static Hook> {
    catalog::serving(Capability::ResetsSent).filter(|h| h.is_function())
}

fn attach_send_reset(ebpf: &mut Ebpf, plan: &AttachPlan) -> Vec<ProbeReport> {
    let tracepoint = &catalog::SEND_RESET;
    let mut order: Vec<Method> = plan.methods.to_vec();
    if !plan.tracepoint_has_reason {
        // A blind tracepoint ranks below the function probes, whatever the configured order.
        order.sort_by_key(|m| !m.is_function_probe());
    }

    let mut failures = Vec::new();
    let mut partial_functions = false;
    for method in order {
        if method.is_function_probe() {
            if partial_functions {
                continue; // fentry and kprobe were both tried per function in one pass
            }
            let reports: Vec<ProbeReport> = reset_functions()
                .map(|hook| attach_chain(ebpf, plan, hook))
                .collect();
            if reports.iter().all(|r| r.attached) {
                let mut all = vec![if failures.is_empty() {
                    ProbeReport::standby(
                        tracepoint.name,
                        "the function probes see every reset on this kernel".to_string(),
                    )
                } else {
                    ProbeReport::failed(tracepoint.name, None, failures.join("; "))
                }];
                all.extend(reports);
                return all;
            }
            // Mixing some function probes with the tracepoint would count resets twice.
            unload_reset_functions(ebpf);
            partial_functions = true;
            failures.push("function probes: not every reset function could be probed".to_string());
            continue;
        }
        if tracepoint.attachment(method).is_none() {
            continue;
        }
        match attach_by(ebpf, plan, tracepoint, method) {
            Ok(()) => {
                let mut report = ProbeReport::attached(tracepoint.name, method, &failures);
                if !plan.tracepoint_has_reason {
                    let blind = "reason-blind on this kernel: resets sent without a socket \
                                 (refused connects, unknown connections) are not seen";
                    report.error = Some(join(report.error.take(), blind));
                }
                let mut all = vec![report];
                all.extend(reset_functions().map(|hook| {
                    ProbeReport::standby(hook.name, format!("{} is attached", tracepoint.name))
                }));
                return all;
            }
            Err(err) => failures.push(format!("{method}: {err}")),
        }
    }
    // Nothing whole attached: take whichever function probes work rather than nothing.
    let mut all = vec![ProbeReport::failed(
        tracepoint.name,
        None,
        failures.join("; "),
    )];
    all.extend(reset_functions().map(|hook| attach_chain(ebpf, plan, hook)));
    all
}

fn unload_reset_functions(ebpf: &mut Ebpf) {
    for attachment in reset_functions().flat_map(|h| h.methods().filter_map(|m| h.attachment(m))) {
        let unloaded = match attachment {
            Attachment::Fentry { program: name, .. } => {
                program::<FEntry>(ebpf, name).map(|p| p.unload())
            }
            Attachment::Kprobe { program: name, .. } => {
                program::<KProbe>(ebpf, name).map(|p| p.unload())
            }
            Attachment::Tracepoint { .. } | Attachment::BtfTracepoint { .. } => continue,
        };
        // A program that never loaded has nothing to unload.
        drop(unloaded);
    }
}

fn join(first: Option<String>, second: &str) -> String {
    match first {
        Some(first) => format!("{first}; {second}"),
        None => second.to_string(),
    }
}

/// Tries each allowed method that reaches `hook`, in the configured order, until one attaches.
fn attach_chain(ebpf: &mut Ebpf, plan: &AttachPlan, hook: &Hook) -> ProbeReport {
    let mut failures = Vec::new();
    let mut last_tried = None;
    for method in plan.methods.iter().copied() {
        if hook.attachment(method).is_none() {
            continue;
        }
        last_tried = Some(method);
        match attach_by(ebpf, plan, hook, method) {
            Ok(()) => return ProbeReport::attached(hook.name, method, &failures),
            Err(err) => failures.push(format!("{method}: {err}")),
        }
    }
    let needs = match hook.point {
        Point::Tracepoint { .. } => "tracepoint or tp_btf",
        Point::Function { .. } => "fentry or kprobe",
    };
    if failures.is_empty() {
        failures.push(format!("no allowed method (needs {needs})"));
    }
    // A function probe that did not attach reports no method (`method="none"` in the metrics).
    let method = last_tried.filter(|_| !hook.is_function());
    ProbeReport::failed(hook.name, method, failures.join("; "))
}

fn attach_by(
    ebpf: &mut Ebpf,
    plan: &AttachPlan,
    hook: &Hook,
    method: Method,
) -> Result<(), AttachError> {
    let attachment = hook
        .attachment(method)
        .expect("chains try only the methods a hook has programs for");
    match attachment {
        Attachment::Tracepoint {
            program,
            category,
            event,
        } => attach_tracepoint(ebpf, program, category, event),
        Attachment::BtfTracepoint { program, event } => {
            attach_btf_tracepoint(ebpf, plan.btf, program, event)
        }
        Attachment::Fentry { program, function } => {
            attach_fentry(ebpf, plan.btf, program, function)
        }
        Attachment::Kprobe { program, function } => attach_kprobe(ebpf, program, function),
    }
}

fn program<'a, T>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut T, AttachError>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = ProgramError>,
{
    let program = ebpf
        .program_mut(name)
        .ok_or(AttachError::ProgramMissing(name))?;
    Ok(program.try_into()?)
}

/// Attaches a loaded program, unloading it again when it cannot attach so that a later method
/// starts clean.
macro_rules! attach_or_unload {
    ($program:expr, $attach:expr) => {
        $attach.map(drop).map_err(|err| {
            let _ = $program.unload();
            AttachError::from(err)
        })
    };
}

fn attach_tracepoint(
    ebpf: &mut Ebpf,
    program_name: &'static str,
    category: &str,
    event: &str,
) -> Result<(), AttachError> {
    let program: &mut TracePoint = program(ebpf, program_name)?;
    program.load()?;
    attach_or_unload!(program, program.attach(category, event))
}

fn attach_btf_tracepoint(
    ebpf: &mut Ebpf,
    btf: Option<&Btf>,
    program_name: &'static str,
    event: &str,
) -> Result<(), AttachError> {
    let btf = btf.ok_or(AttachError::NoBtf)?;
    let program: &mut BtfTracePoint = program(ebpf, program_name)?;
    program.load(event, btf)?;
    attach_or_unload!(program, program.attach())
}

fn attach_fentry(
    ebpf: &mut Ebpf,
    btf: Option<&Btf>,
    program_name: &'static str,
    function: &str,
) -> Result<(), AttachError> {
    let btf = btf.ok_or(AttachError::NoBtf)?;
    let program: &mut FEntry = program(ebpf, program_name)?;
    program.load(function, btf)?;
    attach_or_unload!(program, program.attach())
}

fn attach_kprobe(
    ebpf: &mut Ebpf,
    program_name: &'static str,
    function: &str,
) -> Result<(), AttachError> {
    let program: &mut KProbe = program(ebpf, program_name)?;
    program.load()?;
    attach_or_unload!(program, program.attach(function, 0))
}

/// Counts attached probes for the progress line.
pub fn attached_count(reports: &[ProbeReport]) -> usize {
    reports.iter().filter(|r| r.attached).count()
}

/// Fails when nothing at all attached: there is nothing to watch with.
pub fn require_some(reports: &[ProbeReport]) -> Result<()> {
    if attached_count(reports) == 0 {
        let details: Vec<String> = reports
            .iter()
            .map(|r| format!("{}: {}", r.name, r.error.as_deref().unwrap_or("?")))
            .collect();
        anyhow::bail!("no probe could be attached:\n  {}", details.join("\n  "));
    }
    Ok(())
}
