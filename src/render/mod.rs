//! Pictures of what a policy does: an episode of a locomotion task as an animated GIF (or MP4
//! where `ffmpeg` is on the PATH), ray-traced in software — no GPU, no display — with the
//! task, step and return written over it.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};
use plotters::prelude::*;
use spikerl_envs::rng::EnvRng;
use spikerl_envs::render::Follower;
use spikerl_envs::{Env, make_locomotion};
use spikerl_snn::{ParamSet, Policy};


/// What chooses the actions.
pub enum Driver {
    /// A trained actor (spiking or dense).
    Policy(Box<Policy>),
    Zero,
    /// Uniform inside the action space.
    Random(EnvRng),
    /// The reference rollouts' sine, `a[j] = 0.5·sin(2π·1.5·t·dt + j)`.
    Sine,
}

impl Driver {
    pub fn policy(params: &ParamSet) -> Result<Self> {
        Ok(Self::Policy(Box::new(Policy::new(params).context("the policy does not load")?)))
    }
}

/// The picture's size, length and first reset.
#[derive(Debug, Clone, Copy)]
pub struct RenderOptions {
    pub steps: usize,
    pub width: usize,
    pub height: usize,
    pub seed: u64,
}

/// What was drawn.
#[derive(Debug, Clone, Copy)]
pub struct Rendered {
    pub frames: usize,
    pub steps: usize,
    pub ret: f64,
}

/// Frames per second the pictures aim at (each frame shows whole env steps).
const FPS: f64 = 30.0;

/// Parses `WxH` (16 to 4096 pixels each way).
pub fn parse_size(s: &str) -> Result<(usize, usize), String> {
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(|| format!("'{s}': give WIDTHxHEIGHT, e.g. 480x320"))?;
    let side = |v: &str| v.trim().parse::<usize>().ok().filter(|n| (16..=4096).contains(n));
    match (side(w), side(h)) {
        (Some(w), Some(h)) => Ok((w, h)),
        _ => Err(format!("'{s}': width and height must be whole numbers from 16 to 4096")),
    }
}

/// Where frames go: a GIF encoder, or `ffmpeg` making an MP4. Written to a temporary file
/// renamed at the end, so that an interrupted picture leaves nothing half-written.
enum Sink {
    Gif(gif::Encoder<BufWriter<File>>),
    Mp4(Child),
}

impl Sink {
    fn open(tmp: &Path, mp4: bool, width: usize, height: usize, frame_s: f64) -> Result<Self> {
        if mp4 {
            if width % 2 == 1 || height % 2 == 1 {
                bail!("MP4 (yuv420p) needs an even width and height");
            }
            let child = Command::new("ffmpeg")
                .args(["-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", &format!("{width}x{height}"), "-r", &format!("{:.4}", 1.0 / frame_s), "-i", "-", "-pix_fmt", "yuv420p", "-f", "mp4"])
                .arg(tmp)
                .stdin(Stdio::piped())
                .spawn();
            return match child {
                Ok(c) => Ok(Self::Mp4(c)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!("MP4 needs ffmpeg on the PATH, which is not here; write a .gif instead"),
                Err(e) => Err(e).context("cannot start ffmpeg"),
            };
        }
        let file = BufWriter::new(File::create(tmp).with_context(|| format!("cannot write {}", tmp.display()))?);
        let mut encoder = gif::Encoder::new(file, width as u16, height as u16, &[])?;
        encoder.set_repeat(gif::Repeat::Infinite)?;
        Ok(Self::Gif(encoder))
    }

    fn frame(&mut self, rgb: &[u8], width: usize, height: usize, frame_s: f64) -> Result<()> {
        match self {
            Self::Gif(encoder) => {
                let mut frame = gif::Frame::from_rgb_speed(width as u16, height as u16, rgb, 10);
                // Centiseconds; browsers slow anything under 2 down to 10.
                frame.delay = ((frame_s * 100.0).round() as u16).max(2);
                encoder.write_frame(&frame)?;
            }
            Self::Mp4(child) => child.stdin.as_mut().expect("ffmpeg's stdin").write_all(rgb).context("ffmpeg stopped taking frames")?,
        }
        Ok(())
    }

    fn finish(self) -> Result<()> {
        match self {
            Self::Gif(encoder) => {
                encoder.into_inner()?.flush()?;
            }
            Self::Mp4(mut child) => {
                drop(child.stdin.take());
                let status = child.wait()?;
                if !status.success() {
                    bail!("ffmpeg failed ({status})");
                }
            }
        }
        Ok(())
    }
}

/// Renders one episode of `env_id` (a locomotion port or an MJCF file) driven by `driver`
/// into `out` (`.gif`, or `.mp4` through ffmpeg): up to `opts.steps` env steps, the episode's
/// end included.
pub fn render(env_id: &str, driver: &mut Driver, opts: &RenderOptions, out: &Path) -> Result<Rendered> {
    let mp4 = match out.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("gif") => false,
        Some("mp4") => true,
        _ => bail!("{}: the picture's file must end in .gif or .mp4", out.display()),
    };
    if opts.steps == 0 {
        bail!("--steps must be positive");
    }
    let mut env = make_locomotion(env_id).with_context(|| format!("render draws the locomotion tasks and MJCF robots; {env_id}"))?;
    let spec = env.spec().clone();
    if let Driver::Policy(p) = driver {
        let (o, a) = (p.obs_dim(), p.act_dim());
        if o != spec.obs_dim() || a != spec.act_dim() {
            bail!("the policy maps {o} observations to {a} actions; {} has {} and {}", spec.id, spec.obs_dim(), spec.act_dim());
        }
    }
    let mut camera = Follower::for_task(&env);
    let every = ((1.0 / (FPS * spec.dt)).round() as usize).max(1);
    let frame_s = every as f64 * spec.dt;
    let (w, h) = (opts.width, opts.height);
    crate::train::plot::register_font();

    let tmp = temporary_beside(out);
    let mut sink = Sink::open(&tmp, mp4, w, h, frame_s)?;
    let mut obs = vec![0.0; spec.obs_dim()];
    let mut action = vec![0.0; spec.act_dim()];
    let mut rgb = vec![0u8; w * h * 3];
    env.reset_into(Some(opts.seed), &mut obs)?;
    let (mut ret, mut steps, mut frames) = (0.0, 0, 0);
    let mut over = false;
    let result = (|| -> Result<()> {
        loop {
            // The last frame: the step budget spent, or where the episode ended.
            let last = over || steps >= opts.steps;
            if steps % every == 0 || last {
                camera.draw(&env, w, h, &mut rgb);
                caption(&mut rgb, w, h, &format!("{}   step {steps}   return {ret:.1}{}", spec.id, if over { "   (episode over)" } else { "" }))?;
                sink.frame(&rgb, w, h, frame_s)?;
                frames += 1;
            }
            if last {
                return Ok(());
            }
            match driver {
                Driver::Policy(p) => p.act(&obs, &mut action)?,
                Driver::Zero => action.fill(0.0),
                Driver::Random(rng) => spec.action_space.sample_into(&mut action, || rng.next_f64()),
                Driver::Sine => spikerl_envs::reference::ActionKind::Sine.action(steps, spec.dt, &mut action),
            }
            let step = env.step_into(&action, &mut obs)?;
            ret += step.reward;
            steps += 1;
            over = step.done();
        }
    })();
    let finished = result.and_then(|()| sink.finish());
    if let Err(e) = finished {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, out).with_context(|| format!("cannot write {}", out.display()))?;
    Ok(Rendered { frames, steps, ret })
}

/// `.NAME.tmp` beside `out`.
fn temporary_beside(out: &Path) -> PathBuf {
    let name = out.file_name().map_or_else(|| "picture".into(), |n| n.to_string_lossy().into_owned());
    out.with_file_name(format!(".{name}.tmp"))
}

/// Writes `text` in the frame's top-left corner on a pale band.
fn caption(rgb: &mut [u8], w: usize, h: usize, text: &str) -> Result<()> {
    let root = BitMapBackend::with_buffer(rgb, (w as u32, h as u32)).into_drawing_area();
    let size = (h as f64 / 22.0).clamp(11.0, 28.0);
    root.draw(&Rectangle::new([(0, 0), (w as i32, (size * 1.6) as i32)], RGBAColor(255, 255, 255, 0.55).filled())).map_err(|e| anyhow::anyhow!("{e}"))?;
    root.draw_text(text, &("sans-serif", size).into_font().color(&RGBColor(25, 25, 25)), ((size * 0.5) as i32, (size * 0.3) as i32)).map_err(|e| anyhow::anyhow!("{e}"))?;
    root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_nonsense_is_refused() {
        assert_eq!(parse_size("480x320"), Ok((480, 320)));
        assert_eq!(parse_size("64X48"), Ok((64, 48)));
        for bad in ["480", "0x10", "10x", "axb", "5000x100"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
