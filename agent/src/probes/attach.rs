//! Attaches every probe through its fallback chain and reports what happened to each.
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
use tcpwhy_common::programs::{
    LISTEN_TRACEPOINT, QUEUE_FUNCTIONS, RECEIVE_RESET_BTF, RECEIVE_RESET_TRACEPOINT,
    RESET_FUNCTIONS, RETRANSMIT_TRACEPOINT, SEND_RESET_BTF, SEND_RESET_TRACEPOINT,
    SET_STATE_TRACEPOINT, SYNACK_TRACEPOINT, TLP_FUNCTION,
};

use super::{
    method::Method,
    report::{NOT_NEEDED, ProbeReport},
};

/// What the attach step needs to know about the kernel.
pub struct AttachPlan<'a> {
    /// Methods allowed, in order of preference.
    pub methods: &'a [Method],
    pub btf: Option<&'a Btf>,
    /// The classic and BTF `tcp_send_reset` tracepoints carry the reset reason.
    pub tracepoint_has_reason: bool,
}

const SEND_RESET: &str = "tcp:tcp_send_reset";
const RECEIVE_RESET: &str = "tcp:tcp_receive_reset";
const SET_STATE: &str = "sock:inet_sock_set_state";
const LISTEN: &str = "syscalls:sys_enter_listen";
const SYNACK: &str = "tcp:tcp_retransmit_synack";
const RETRANSMIT: &str = "tcp:tcp_retransmit_skb";

/// Attaches everything it can; the reports say what attached and why the rest did not.
pub fn attach_all(ebpf: &mut Ebpf, plan: &AttachPlan) -> Vec<ProbeReport> {
    let mut reports = attach_send_reset(ebpf, plan);
    reports.push(attach_tracepoint_chain(
        ebpf,
        plan,
        RECEIVE_RESET,
        RECEIVE_RESET_TRACEPOINT,
        RECEIVE_RESET_BTF,
    ));
    reports.push(attach_tracepoint_chain(
        ebpf,
        plan,
        SET_STATE,
        SET_STATE_TRACEPOINT,
        "",
    ));
    reports.push(attach_tracepoint_chain(
        ebpf,
        plan,
        LISTEN,
        LISTEN_TRACEPOINT,
        "",
    ));
    reports.push(attach_tracepoint_chain(
        ebpf,
        plan,
        SYNACK,
        SYNACK_TRACEPOINT,
        "",
    ));
    reports.push(attach_tracepoint_chain(
        ebpf,
        plan,
        RETRANSMIT,
        RETRANSMIT_TRACEPOINT,
        "",
    ));
    // Exact per-listener overflows; where they cannot attach, queue drops still come from the
    // namespace counters and sock_diag.
    reports.extend(attach_function_probes(ebpf, plan, &QUEUE_FUNCTIONS));
    reports.extend(attach_function_probes(ebpf, plan, &TLP_FUNCTION));
    reports
}

fn attach_send_reset(ebpf: &mut Ebpf, plan: &AttachPlan) -> Vec<ProbeReport> {
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
            let reports = attach_function_probes(ebpf, plan, &RESET_FUNCTIONS);
            if reports.iter().all(|r| r.attached) {
                let why = if failures.is_empty() {
                    format!("{NOT_NEEDED}: the function probes see every reset on this kernel")
                } else {
                    failures.join("; ")
                };
                let mut all = vec![ProbeReport::failed(SEND_RESET, None, why)];
                all.extend(reports);
                return all;
            }
            // Mixing some function probes with the tracepoint would count resets twice.
            unload_function_probes(ebpf);
            partial_functions = true;
            failures.push("function probes: not every reset function could be probed".to_string());
            continue;
        }
        match attach_hook(
            ebpf,
            plan,
            method,
            SEND_RESET,
            SEND_RESET_TRACEPOINT,
            SEND_RESET_BTF,
        ) {
            Ok(()) => {
                let mut report = ProbeReport::attached(SEND_RESET, method, &failures);
                if !plan.tracepoint_has_reason {
                    let blind = "reason-blind on this kernel: resets sent without a socket \
                                 (refused connects, unknown connections) are not seen";
                    report.error = Some(join(report.error.take(), blind));
                }
                let mut all = vec![report];
                all.extend(skipped_functions(&format!(
                    "{NOT_NEEDED}: tcp:tcp_send_reset is attached"
                )));
                return all;
            }
            Err(err) => failures.push(format!("{method}: {err}")),
        }
    }
    // Nothing whole attached: take whichever function probes work rather than nothing.
    let mut all = vec![ProbeReport::failed(SEND_RESET, None, failures.join("; "))];
    all.extend(attach_function_probes(ebpf, plan, &RESET_FUNCTIONS));
    all
}

fn unload_function_probes(ebpf: &mut Ebpf) {
    for (_, fentry_program, kprobe_program) in RESET_FUNCTIONS {
        if let Ok(p) = program::<FEntry>(ebpf, fentry_program) {
            let _ = p.unload();
        }
        if let Ok(p) = program::<KProbe>(ebpf, kprobe_program) {
            let _ = p.unload();
        }
    }
}

fn join(first: Option<String>, second: &str) -> String {
    match first {
        Some(first) => format!("{first}; {second}"),
        None => second.to_string(),
    }
}

fn skipped_functions(why: &str) -> Vec<ProbeReport> {
    RESET_FUNCTIONS
        .iter()
        .map(|(function, _, _)| ProbeReport::failed(function, None, why.to_string()))
        .collect()
}

/// Attaches fentry (else kprobe, in the configured order) on each (function, fentry program,
/// kprobe program).
fn attach_function_probes(
    ebpf: &mut Ebpf,
    plan: &AttachPlan,
    functions: &[(&str, &str, &str)],
) -> Vec<ProbeReport> {
    functions
        .iter()
        .map(|&(function, fentry_program, kprobe_program)| {
            let mut failures = Vec::new();
            for method in plan
                .methods
                .iter()
                .copied()
                .filter(|m| m.is_function_probe())
            {
                let result = match method {
                    Method::Fentry => attach_fentry(ebpf, plan.btf, fentry_program, function),
                    _ => attach_kprobe(ebpf, kprobe_program, function),
                };
                match result {
                    Ok(()) => return ProbeReport::attached(function, method, &failures),
                    Err(err) => failures.push(format!("{method}: {err}")),
                }
            }
            if failures.is_empty() {
                failures.push("no allowed method (needs fentry or kprobe)".to_string());
            }
            ProbeReport::failed(function, None, failures.join("; "))
        })
        .collect()
}

/// A hook reachable as a classic tracepoint and/or a BTF tracepoint.
fn attach_tracepoint_chain(
    ebpf: &mut Ebpf,
    plan: &AttachPlan,
    hook: &str,
    tracepoint_program: &str,
    btf_program: &str,
) -> ProbeReport {
    let mut failures = Vec::new();
    let mut last = None;
    for method in plan
        .methods
        .iter()
        .copied()
        .filter(|m| !m.is_function_probe())
    {
        if method == Method::TpBtf && btf_program.is_empty() {
            continue;
        }
        last = Some(method);
        match attach_hook(ebpf, plan, method, hook, tracepoint_program, btf_program) {
            Ok(()) => return ProbeReport::attached(hook, method, &failures),
            Err(err) => failures.push(format!("{method}: {err}")),
        }
    }
    if failures.is_empty() {
        failures.push("no allowed method (needs tracepoint or tp_btf)".to_string());
    }
    ProbeReport::failed(hook, last, failures.join("; "))
}

fn attach_hook(
    ebpf: &mut Ebpf,
    plan: &AttachPlan,
    method: Method,
    hook: &str,
    tracepoint_program: &str,
    btf_program: &str,
) -> Result<(), String> {
    let (category, name) = hook.split_once(':').expect("hooks are category:name");
    match method {
        Method::Tracepoint => attach_tracepoint(ebpf, tracepoint_program, category, name),
        Method::TpBtf => attach_btf_tracepoint(ebpf, plan.btf, btf_program, name),
        _ => unreachable!("function probes are attached per function"),
    }
}

fn program<'a, T>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut T, String>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = ProgramError>,
{
    let program = ebpf
        .program_mut(name)
        .ok_or_else(|| format!("program {name} missing from the eBPF object"))?;
    program.try_into().map_err(|e: ProgramError| e.to_string())
}

fn attach_tracepoint(
    ebpf: &mut Ebpf,
    program_name: &str,
    category: &str,
    name: &str,
) -> Result<(), String> {
    let program: &mut TracePoint = program(ebpf, program_name)?;
    program.load().map_err(describe)?;
    program.attach(category, name).map_err(|e| {
        let _ = program.unload();
        describe(e)
    })?;
    Ok(())
}

fn attach_btf_tracepoint(
    ebpf: &mut Ebpf,
    btf: Option<&Btf>,
    program_name: &str,
    name: &str,
) -> Result<(), String> {
    let btf = btf.ok_or("no kernel BTF")?;
    let program: &mut BtfTracePoint = program(ebpf, program_name)?;
    program.load(name, btf).map_err(describe)?;
    program.attach().map_err(|e| {
        let _ = program.unload();
        describe(e)
    })?;
    Ok(())
}

fn attach_fentry(
    ebpf: &mut Ebpf,
    btf: Option<&Btf>,
    program_name: &str,
    function: &str,
) -> Result<(), String> {
    let btf = btf.ok_or("no kernel BTF")?;
    let program: &mut FEntry = program(ebpf, program_name)?;
    program.load(function, btf).map_err(describe)?;
    program.attach().map_err(|e| {
        let _ = program.unload();
        describe(e)
    })?;
    Ok(())
}

fn attach_kprobe(ebpf: &mut Ebpf, program_name: &str, function: &str) -> Result<(), String> {
    let program: &mut KProbe = program(ebpf, program_name)?;
    program.load().map_err(describe)?;
    program.attach(function, 0).map_err(|e| {
        let _ = program.unload();
        describe(e)
    })?;
    Ok(())
}

/// One line per error, in words an operator can act on; the verifier log, when there is one,
/// goes to the debug log (`TCPWHY_LOG=debug`).
fn describe(err: ProgramError) -> String {
    match err {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => {
            tracing::debug!(%verifier_log, "verifier rejected a program");
            if io_error.raw_os_error() == Some(libc::EPERM) {
                format!(
                    "load refused ({io_error}): this kernel or its security policy does not allow it"
                )
            } else {
                format!("load failed: {io_error}")
            }
        }
        other => {
            let mut text = other.to_string();
            if text.contains("os error 524") {
                return "this kernel cannot attach fentry to this function (ENOTSUPP)".to_string();
            }
            if text.contains("devices/kprobe/type") {
                return "this kernel has no kprobe support (built without CONFIG_KPROBES)"
                    .to_string();
            }
            let mut source = std::error::Error::source(&other);
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            text
        }
    }
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
