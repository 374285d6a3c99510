use spikerl_envs::rng::EnvRng;

fn main() {
    let ids: Vec<String> = std::env::args().skip(1).collect();
    let ids = if ids.is_empty() { vec!["Hopper-v4".to_string(), "HalfCheetah-v4".into(), "Ant-v4".into()] } else { ids };
    for id in ids.iter().map(String::as_str) {
        let mut env = spikerl_envs::make(id).unwrap();
        let mut rng = EnvRng::seed_from_u64(1);
        let mut obs = vec![0.0; env.spec().obs_dim()];
        let mut act = vec![0.0f32; env.spec().act_dim()];
        env.reset_into(Some(0), &mut obs).unwrap();
        let n = 20000;
        let t = std::time::Instant::now();
        let mut eps = 0;
        for _ in 0..n {
            for a in act.iter_mut() { *a = rng.uniform(-1.0, 1.0) as f32; }
            let s = env.step_into(&act, &mut obs).unwrap();
            if s.terminated || s.truncated { env.reset_into(None, &mut obs).unwrap(); eps += 1; }
        }
        let dt = t.elapsed().as_secs_f64();
        println!("{id}: {:.0} steps/s ({eps} episodes)", n as f64 / dt);
    }
}
