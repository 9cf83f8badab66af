//! One QuickJS runtime on one dedicated thread, and the running of one handler call in it.
//!
//! Owns the limits of a call: a hard memory ceiling (QuickJS's allocator refuses past it), a
//! CPU budget enforced by the interrupt handler (QuickJS polls it while running bytecode), a
//! bounded JS stack, and a fresh context per call so nothing one call defines is visible to the
//! next (endpoints of different tenants share a worker). It must not expose any host function:
//! the context has the standard intrinsics only — no timers, no I/O, no module loader.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cpu_time::ThreadTime;
use parking_lot::Mutex;
use rquickjs::{CaughtError, Context, Ctx, Function, Runtime, Value};

use super::{TransformError, TransformLimits};

/// Largest JS stack one call may use; the worker thread's own stack is well above it.
const JS_STACK_BYTES: usize = 1024 * 1024;
/// Longest error text kept (it ends up in the attempt's stored response).
const MAX_ERROR_CHARS: usize = 1_000;

/// When the running call started, shared with the interrupt handler.
#[derive(Default)]
struct Clock {
    /// The thread's CPU time and the wall clock when the call started. (`ThreadTime` itself
    /// is not `Send`, which the interrupt handler must be; it runs on this same thread.)
    started: Option<(Duration, Instant)>,
    timed_out: bool,
}

/// A runtime reused across calls on the thread that created it.
pub(super) struct Sandbox {
    rt: Runtime,
    clock: Arc<Mutex<Clock>>,
    limits: TransformLimits,
}

impl Sandbox {
    pub(super) fn new(limits: TransformLimits) -> Result<Self, TransformError> {
        let rt = Runtime::new().map_err(|e| TransformError::Internal(e.to_string()))?;
        rt.set_memory_limit(limits.memory_bytes);
        rt.set_max_stack_size(JS_STACK_BYTES);
        let clock = Arc::new(Mutex::new(Clock::default()));
        let seen = clock.clone();
        let cpu = limits.cpu;
        // A wall-clock ceiling as well: a thread starved of CPU by the machine must still give
        // its worker back eventually.
        let wall = (cpu * 20).max(Duration::from_secs(1));
        rt.set_interrupt_handler(Some(Box::new(move || {
            let mut c = seen.lock();
            let over = match c.started {
                Some((cpu_start, wall_start)) => {
                    ThreadTime::now().as_duration().saturating_sub(cpu_start) > cpu
                        || wall_start.elapsed() > wall
                }
                None => false,
            };
            c.timed_out |= over;
            over
        })));
        Ok(Self { rt, clock, limits })
    }

    /// Runs `handler(input)` of `code`; answers the JSON text of the returned value.
    pub(super) fn call(&mut self, code: &str, input: &str) -> Result<String, TransformError> {
        let ctx = Context::full(&self.rt).map_err(|e| TransformError::Internal(e.to_string()))?;
        *self.clock.lock() = Clock {
            started: Some((ThreadTime::now().as_duration(), Instant::now())),
            timed_out: false,
        };
        let out = ctx.with(|ctx| run(&ctx, code, input));
        let timed_out = std::mem::take(&mut *self.clock.lock()).timed_out;
        drop(ctx);
        self.rt.run_gc();
        if timed_out {
            return Err(TransformError::Script(format!(
                "the handler ran longer than {} ms of CPU and was interrupted",
                self.limits.cpu.as_millis()
            )));
        }
        out.map_err(|e| {
            let lower = e.to_ascii_lowercase();
            if lower.contains("out of memory") || lower.contains("allocation") {
                TransformError::Script(format!(
                    "the handler used more than {} bytes of memory",
                    self.limits.memory_bytes
                ))
            } else {
                TransformError::Script(truncate(e))
            }
        })
    }
}

fn run(ctx: &Ctx<'_>, code: &str, input: &str) -> Result<String, String> {
    let caught = |e: rquickjs::Error| describe(CaughtError::from_error(ctx, e));
    ctx.eval::<(), _>(code).map_err(caught)?;
    let handler: Value = ctx.globals().get("handler").map_err(caught)?;
    let Some(handler) = handler.into_function() else {
        return Err("the code defines no function `handler(webhook)`".into());
    };
    let handler: Function = handler;
    let arg = ctx.json_parse(input).map_err(caught)?;
    let result: Value = handler.call((arg,)).map_err(caught)?;
    if !result.is_object() || result.is_array() || result.is_function() {
        return Err(format!(
            "the handler must return an object, not {}",
            result.type_name()
        ));
    }
    match ctx.json_stringify(result).map_err(caught)? {
        Some(s) => s.to_string().map_err(caught),
        None => Err("the handler's result cannot be turned into JSON".into()),
    }
}

fn describe(e: CaughtError<'_>) -> String {
    match e {
        CaughtError::Exception(ex) => {
            let msg = ex.message().unwrap_or_default();
            if msg.is_empty() {
                "the handler threw an exception".into()
            } else {
                msg
            }
        }
        CaughtError::Value(v) => match v.as_string().and_then(|s| s.to_string().ok()) {
            Some(s) => format!("the handler threw {s:?}"),
            None => format!("the handler threw a {}", v.type_name()),
        },
        CaughtError::Error(e) => e.to_string(),
    }
}

fn truncate(mut s: String) -> String {
    if s.chars().count() > MAX_ERROR_CHARS {
        s = s.chars().take(MAX_ERROR_CHARS).collect::<String>() + "…";
    }
    s
}
