#!/usr/bin/env python3
"""MuJoCo's contacts for box, cylinder and ellipsoid geoms on a plane, as reference data for the
port's general shapes.

For each shape, on a free body over the floor plane (with a 1 g hinged tag inside it that
collides with nothing: the port articulates bodies through their joints):
- `poses`: the body placed at fixed poses (flat and slightly into the floor, tilted, on an
  edge), `mj_forward` only: how many contacts MuJoCo's collision yields, with each contact's
  signed distance, position and normal;
- `rest`: dropped from just above the floor and simulated for 2 s: the rest height of the
  centre and the contact count there.
And a box-footed Walker2d (`envs/tests/data/walker2d_box_feet.xml`: Walker2d-v4's model with
its capsule feet replaced by boxes) under zero actions: the torso height after 50, 100 and
200 steps of 8 ms.

    .venv-mujoco/bin/python tools/shapes_reference.py envs/tests/data
"""
import json
import math
import os
import sys

import mujoco
import numpy as np

SHAPES = {
    "box": 'type="box" size="0.2 0.1 0.05"',
    "cylinder": 'type="cylinder" size="0.1 0.15"',
    "ellipsoid": 'type="ellipsoid" size="0.2 0.1 0.05"',
}


def scene(geom):
    return f"""<mujoco>
  <option timestep="0.002"/>
  <worldbody>
    <geom name="floor" type="plane" size="10 10 0.1"/>
    <body name="thing" pos="0 0 1">
      <freejoint/>
      <geom name="thing" {geom} density="1000"/>
      <body name="tag">
        <joint name="tag" type="hinge" axis="0 0 1"/>
        <geom name="tag" type="sphere" size="0.005" contype="0" conaffinity="0" mass="0.001"/>
      </body>
    </body>
  </worldbody>
</mujoco>"""


def quat_axis_angle(axis, angle):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    return [math.cos(angle / 2), *(math.sin(angle / 2) * axis)]


def quat_mul(a, b):
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return [w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2]


def lowest_z(model, data):
    """How far below its centre the geom reaches (from a pose at z = 1)."""
    mujoco.mj_forward(model, data)
    return 1.0 - min(c[2] for c in corners(model, data))


def corners(model, data):
    # Sample the surface finely enough for a bound; only used to place the body.
    g = 1
    size, kind = model.geom_size[g], model.geom_type[g]
    pts = []
    for th in np.linspace(0, 2 * np.pi, 73):
        for ph in np.linspace(0, np.pi, 37):
            d = np.array([math.sin(ph) * math.cos(th), math.sin(ph) * math.sin(th), math.cos(ph)])
            if kind == mujoco.mjtGeom.mjGEOM_BOX:
                p = np.sign(d) * size
            elif kind == mujoco.mjtGeom.mjGEOM_CYLINDER:
                r = d[:2] / max(np.linalg.norm(d[:2]), 1e-12) * size[0]
                p = np.array([r[0], r[1], math.copysign(size[1], d[2])])
            else:
                p = d * size
            pts.append(data.geom_xpos[g] + data.geom_xmat[g].reshape(3, 3) @ p)
    return pts


def contacts_at(model, data, quat, into):
    data.qpos[:] = 0
    data.qpos[2] = 1.0
    data.qpos[3:7] = quat
    data.qvel[:] = 0
    reach = lowest_z(model, data)
    data.qpos[2] = reach - into
    mujoco.mj_forward(model, data)
    return {
        "quat": list(map(float, quat)),
        "centre_z": float(data.qpos[2]),
        "contacts": [
            {"dist": float(c.dist), "pos": list(map(float, c.pos)), "normal": list(map(float, c.frame[:3]))}
            for c in data.contact[: data.ncon]
        ],
    }


def rest(model, data, quat):
    data.qpos[:] = 0
    data.qpos[2] = 1.0
    data.qpos[3:7] = quat
    data.qvel[:] = 0
    data.qpos[2] = lowest_z(model, data) + 0.01
    mujoco.mj_forward(model, data)
    for _ in range(1000):
        mujoco.mj_step(model, data)
    return {"quat": list(map(float, quat)), "centre_z": float(data.qpos[2]), "ncon": int(data.ncon)}


def walker(path):
    model = mujoco.MjModel.from_xml_path(path)
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    torso = model.body("torso").id
    heights = {}
    for step in range(1, 201):
        for _ in range(4):
            mujoco.mj_step(model, data)
        if step in (50, 100, 200):
            heights[str(step)] = float(data.xpos[torso][2])
    return heights


def main():
    out = sys.argv[1]
    result = {"mujoco": mujoco.__version__, "shapes": {}}
    flat = [1.0, 0.0, 0.0, 0.0]
    tilted = quat_mul(quat_axis_angle([0, 1, 0], 0.5), quat_axis_angle([1, 0, 0], 0.3))
    on_edge = quat_axis_angle([1, 0, 0], math.pi / 4)
    upright = quat_axis_angle([1, 0, 0], math.pi / 2)
    for name, geom in SHAPES.items():
        model = mujoco.MjModel.from_xml_string(scene(geom))
        data = mujoco.MjData(model)
        result["shapes"][name] = {
            "geom": geom,
            "poses": [contacts_at(model, data, q, 0.002) for q in (flat, tilted, on_edge, upright)],
            "rest": [rest(model, data, q) for q in (flat, upright)],
        }
    xml = os.path.join(out, "walker2d_box_feet.xml")
    result["walker2d_box_feet"] = {"file": "walker2d_box_feet.xml", "zero_action_torso_z": walker(xml)}
    with open(os.path.join(out, "shapes.mujoco.json"), "w") as f:
        json.dump(result, f, indent=1)
    print("wrote", os.path.join(out, "shapes.mujoco.json"))


if __name__ == "__main__":
    main()
