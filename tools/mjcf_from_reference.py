#!/usr/bin/env python3
"""Write the MJCF assets of the locomotion tasks from MuJoCo's reference figures.

The reference files (`shared/reference/mujoco/<Env>.model.json`) hold the compiled MuJoCo
model: every body pose, inertial frame, joint, geom and actuator. This tool writes them back
out as plain MJCF (explicit `<inertial>`, radians, no defaults), so the rapier loader sees
exactly MuJoCo's masses and inertias instead of re-deriving them from geom densities.

    python3 tools/mjcf_from_reference.py ../shared/reference/mujoco envs/assets
"""
import json
import os
import sys

TASKS = {"Hopper-v4": "hopper.xml", "HalfCheetah-v4": "half_cheetah.xml", "Ant-v4": "ant.xml", "Walker2d-v4": "walker2d.xml", "Humanoid-v4": "humanoid.xml"}
INTEGRATORS = {"mjINT_EULER": "Euler", "mjINT_RK4": "RK4", "mjINT_IMPLICIT": "implicit", "mjINT_IMPLICITFAST": "implicitfast"}
GEOM_TYPES = {"mjGEOM_PLANE": "plane", "mjGEOM_SPHERE": "sphere", "mjGEOM_CAPSULE": "capsule",
              "mjGEOM_BOX": "box", "mjGEOM_CYLINDER": "cylinder", "mjGEOM_ELLIPSOID": "ellipsoid"}


def fmt(v):
    return " ".join(f"{x:.9g}" for x in v)


def geom_size(g):
    kind = GEOM_TYPES[g["type"]]
    n = {"plane": 3, "sphere": 1, "capsule": 2, "cylinder": 2, "box": 3, "ellipsoid": 3}[kind]
    return kind, g["size"][:n]


def body_names(model):
    """MuJoCo allows anonymous bodies (Ant's feet); the port needs a name for each."""
    names = []
    for b in model["bodies"]:
        names.append(b["name"] if b["name"] else f"{names[-1]}_foot" if names else "body")
    return names


def write_model(model):
    names = body_names(model)
    by_parent = {}
    for i, b in enumerate(model["bodies"][1:], start=1):
        parent = names.index(b["parent"]) if b["parent"] else 0
        by_parent.setdefault(parent, []).append(i)
    joints_of = {}
    for j in model["joints"]:
        body = model["bodies"][[k for k, b in enumerate(model["bodies"]) if b["name"] == j["body"]][0]] if j["body"] else None
        joints_of.setdefault(j["body"] if j["body"] else None, []).append(j)
    # Anonymous bodies own joints whose "body" is None; attach those by order of appearance.
    anon_joints = [j for j in model["joints"] if j["body"] is None]
    geoms_of = {}
    for g in model["geoms"]:
        geoms_of.setdefault(g["body"], []).append(g)
    anon_geoms = [g for g in model["geoms"] if g["body"] is None]

    opt = model["option"]
    lines = [
        f'<!-- {model["env_id"]}: written by tools/mjcf_from_reference.py from MuJoCo {model["versions"]["mujoco"]} figures. -->',
        f'<mujoco model="{model["env_id"]}">',
        '  <compiler angle="radian" inertiafromgeom="false" autolimits="true"/>',
        f'  <option timestep="{opt["timestep"]:.9g}" gravity="{fmt(opt["gravity"])}" integrator="{INTEGRATORS[opt["integrator"]]}"/>',
        '  <worldbody>',
    ]

    def emit_geom(g, indent):
        kind, size = geom_size(g)
        name = f' name="{g["name"]}"' if g["name"] else ""
        lines.append(
            f'{indent}<geom{name} type="{kind}" size="{fmt(size)}" pos="{fmt(g["pos"])}" quat="{fmt(g["quat"])}" '
            f'friction="{fmt(g["friction"])}" contype="{g["contype"]}" conaffinity="{g["conaffinity"]}" '
            f'condim="{g["condim"]}" margin="{g["margin"]:.9g}" solref="{fmt(g["solref"])}" solimp="{fmt(g["solimp"])}"/>')

    def emit_joint(j, indent):
        attrs = f'name="{j["name"]}" type="{j["type"]}"'
        if j["type"] != "free":
            attrs += f' axis="{fmt(j["axis"])}" pos="{fmt(j["pos"])}"'
            if j["qpos0"]:
                attrs += f' ref="{j["qpos0"]:.9g}"'
            if j["limited"]:
                attrs += f' range="{fmt(j["range"])}"'
            for key in ("armature", "damping", "stiffness", "frictionloss"):
                if j[key]:
                    attrs += f' {key}="{j[key]:.9g}"'
            attrs += f' solreflimit="{fmt(j["solref_limit"])}" solimplimit="{fmt(j["solimp_limit"])}"'
        lines.append(f"{indent}<joint {attrs}/>")

    def emit_body(i, depth):
        b = model["bodies"][i]
        indent = "  " * (depth + 2)
        lines.append(f'{indent}<body name="{names[i]}" pos="{fmt(b["pos"])}" quat="{fmt(b["quat"])}">')
        lines.append(f'{indent}  <inertial pos="{fmt(b["ipos"])}" quat="{fmt(b["iquat"])}" mass="{b["mass"]:.9g}" diaginertia="{fmt(b["inertia"])}"/>')
        own_joints = joints_of.get(b["name"], []) if b["name"] else [anon_joints.pop(0)]
        for j in own_joints:
            emit_joint(j, indent + "  ")
        own_geoms = geoms_of.get(b["name"], []) if b["name"] else [anon_geoms.pop(0)]
        for g in own_geoms:
            emit_geom(g, indent + "  ")
        for c in by_parent.get(i, []):
            emit_body(c, depth + 1)
        lines.append(f"{indent}</body>")

    for g in geoms_of.get("world", []):
        emit_geom(g, "    ")
    for c in by_parent.get(0, []):
        emit_body(c, 0)
    lines.append("  </worldbody>")
    lines.append("  <actuator>")
    for a in model["actuators"]:
        lines.append(f'    <motor joint="{a["joint"]}" gear="{a["gear0"]:.9g}" ctrlrange="{fmt(a["ctrlrange"])}" ctrllimited="true"/>')
    lines.append("  </actuator>")
    lines.append("</mujoco>")
    return "\n".join(lines) + "\n"


def main():
    src, dst = sys.argv[1], sys.argv[2]
    for env_id, file in TASKS.items():
        with open(os.path.join(src, f"{env_id}.model.json")) as f:
            model = json.load(f)
        with open(os.path.join(dst, file), "w") as f:
            f.write(write_model(model))
        print("wrote", os.path.join(dst, file))


if __name__ == "__main__":
    main()
