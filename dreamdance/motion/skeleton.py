"""A procedural whole-body skeleton: forward kinematics in the image plane.

Builds keypoints in our pose-file layout (COCO-18 body, 68 face, 21 per hand) from a handful
of joint angles, so that the bundled sample (and tests) can make poses with known geometry.
Angles are in radians in image coordinates (x right, y down); 0 points right, +π/2 points down.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Proportions:
    """Limb lengths in units of the body height (crown to heel)."""

    neck: float = 0.09        # neck to nose
    shoulder: float = 0.11    # neck to each shoulder
    upper_arm: float = 0.16
    forearm: float = 0.14
    torso: float = 0.27       # neck to hip centre
    hip: float = 0.06         # hip centre to each hip
    thigh: float = 0.22
    shin: float = 0.21
    head: float = 0.065       # head radius
    hand: float = 0.07        # wrist to fingertip


@dataclass(frozen=True)
class Angles:
    """Joint angles (radians, image frame). Defaults: standing, arms down and slightly out."""

    lean: float = 0.0                  # torso tilt from vertical (+ = top leans right)
    head_turn: float = 0.0             # head offset from the neck direction
    r_upper: float = np.pi / 2 + 0.25  # right arm (the figure's right: image left)
    r_fore: float = np.pi / 2 + 0.15
    l_upper: float = np.pi / 2 - 0.25
    l_fore: float = np.pi / 2 - 0.15
    r_thigh: float = np.pi / 2 + 0.08
    r_shin: float = np.pi / 2 + 0.04
    l_thigh: float = np.pi / 2 - 0.08
    l_shin: float = np.pi / 2 - 0.04


def _unit(a: float) -> np.ndarray:
    return np.array([np.cos(a), np.sin(a)])


def body_keypoints(neck: np.ndarray, height: float, ang: Angles,
                   prop: Proportions = Proportions()) -> np.ndarray:
    """COCO-18 keypoints ``[18, 2]`` in pixels from the neck position and a body height."""
    up = -_unit(np.pi / 2 + ang.lean)            # torso direction, neck -> head
    side = np.array([-up[1], up[0]])             # towards image right (figure's left)
    L = {k: v * height for k, v in prop.__dict__.items()}
    k = np.zeros((18, 2))
    k[1] = neck
    k[0] = neck + L["neck"] * (up * np.cos(ang.head_turn) + side * np.sin(ang.head_turn))
    k[2] = neck - side * L["shoulder"]
    k[5] = neck + side * L["shoulder"]
    k[3] = k[2] + L["upper_arm"] * _unit(ang.r_upper)
    k[4] = k[3] + L["forearm"] * _unit(ang.r_fore)
    k[6] = k[5] + L["upper_arm"] * _unit(ang.l_upper)
    k[7] = k[6] + L["forearm"] * _unit(ang.l_fore)
    hip = neck - up * L["torso"]
    k[8] = hip - side * L["hip"]
    k[11] = hip + side * L["hip"]
    k[9] = k[8] + L["thigh"] * _unit(ang.r_thigh)
    k[10] = k[9] + L["shin"] * _unit(ang.r_shin)
    k[12] = k[11] + L["thigh"] * _unit(ang.l_thigh)
    k[13] = k[12] + L["shin"] * _unit(ang.l_shin)
    eye_up, eye_side = 0.25 * L["head"], 0.35 * L["head"]
    k[14] = k[0] + up * eye_up - side * eye_side
    k[15] = k[0] + up * eye_up + side * eye_side
    k[16] = k[0] - side * L["head"]
    k[17] = k[0] + side * L["head"]
    return k


def face_keypoints(nose: np.ndarray, head_radius: float, up: np.ndarray) -> np.ndarray:
    """68 iBUG-layout face landmarks ``[68, 2]`` around ``nose`` for a head of ``head_radius``."""
    side = np.array([-up[1], up[0]])
    r = head_radius

    def at(u: np.ndarray, v: np.ndarray) -> np.ndarray:  # u: towards image right, v: up
        return nose + np.outer(u, side) * r + np.outer(v, up) * r

    jaw_t = np.linspace(np.pi * 1.05, np.pi * 1.95, 17)   # ear to ear under the chin
    jaw = at(0.9 * np.cos(jaw_t[::-1] + np.pi), 0.2 + 0.95 * np.sin(jaw_t))
    brows = np.concatenate([at(np.linspace(-0.7, -0.15, 5), np.full(5, 0.55)),
                            at(np.linspace(0.15, 0.7, 5), np.full(5, 0.55))])
    bridge = at(np.zeros(4), np.linspace(0.35, 0.0, 4))
    nostrils = at(np.linspace(-0.2, 0.2, 5), np.full(5, -0.1))
    eye_t = np.linspace(0, 2 * np.pi, 6, endpoint=False)
    eyes = np.concatenate([at(-0.4 + 0.18 * np.cos(eye_t + np.pi), 0.3 + 0.08 * np.sin(eye_t)),
                           at(0.4 + 0.18 * np.cos(eye_t + np.pi), 0.3 + 0.08 * np.sin(eye_t))])
    mouth_t = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    outer = at(0.3 * np.cos(mouth_t + np.pi), -0.45 + 0.1 * np.sin(mouth_t))
    inner_t = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    inner = at(0.2 * np.cos(inner_t + np.pi), -0.45 + 0.05 * np.sin(inner_t))
    return np.concatenate([jaw, brows, bridge, nostrils, eyes, outer, inner])


def hand_keypoints(wrist: np.ndarray, direction: float, length: float,
                   spread: float = 0.35) -> np.ndarray:
    """21 hand keypoints ``[21, 2]``: the wrist, then 4 joints for each of the five fingers."""
    k = [wrist]
    for f, offset in enumerate(np.linspace(-spread, spread, 5)):
        a = direction + offset
        finger = length * (0.75 if f == 0 else 1.0)
        base = wrist + 0.45 * length * _unit(direction + 1.6 * offset)
        for j in range(1, 5):
            k.append(base + finger * 0.55 * j / 4 * _unit(a))
    return np.asarray(k)


def whole_body(neck: np.ndarray, height: float, ang: Angles,
               prop: Proportions = Proportions()) -> dict[str, np.ndarray]:
    """All four parts as ``{"body": [18,3], "face": [68,3], "left_hand"/"right_hand": [21,3]}``
    with confidence 1."""
    body = body_keypoints(neck, height, ang, prop)
    up = body[0] - body[1]
    up = up / np.linalg.norm(up)
    face = face_keypoints(body[0], prop.head * height, up)
    r_dir = np.arctan2(*(body[4] - body[3])[::-1])
    l_dir = np.arctan2(*(body[7] - body[6])[::-1])
    right = hand_keypoints(body[4], r_dir, prop.hand * height)
    left = hand_keypoints(body[7], l_dir, prop.hand * height)

    def conf(a: np.ndarray) -> np.ndarray:
        return np.concatenate([a, np.ones((len(a), 1))], axis=1).astype(np.float32)

    return {"body": conf(body), "face": conf(face), "left_hand": conf(left),
            "right_hand": conf(right)}
