"""Every fast path of the training step computes what the plain path computes (issue #20).

The plain paths are written out here as the official code / DINO write them (a Python loop per tensor); the fast
ones are what svt.pretrain runs: batched clipping and EMA, the fused AdamW, per-block torch.compile.
"""

import copy

import pytest
import torch

from svt.device import compile_blocks
from svt.loss import SVTLoss, view_pairs
from svt.model import MultiCropWrapper, build_backbone, build_head
from svt.pretrain import svt_loss
from svt.schedules import clip_gradients, ema_update, param_groups


def micro_pair(seed=0):
    torch.manual_seed(seed)
    student = MultiCropWrapper(build_backbone("vit_micro_patch8", img_size=32, num_frames=4, drop_path_rate=0.0),
                               build_head(64, out_dim=32, hidden_dim=48, bottleneck_dim=16))
    return student, copy.deepcopy(student)


def random_grads(model, seed=1):
    g = torch.Generator().manual_seed(seed)
    for i, p in enumerate(model.parameters()):
        # Norms on both sides of the clip: some gradients are scaled, some are left alone.
        p.grad = torch.randn(p.shape, generator=g) * (10.0 if i % 2 else 0.01)


def test_batched_clipping_scales_each_gradient_as_the_per_tensor_loop_does():
    model, reference = micro_pair()
    random_grads(model)
    random_grads(reference)
    clip_gradients(model, 3.0)
    for p in reference.parameters():  # DINO's utils.clip_gradients
        norm = p.grad.norm(2)
        clip_coef = 3.0 / (norm + 1e-6)
        if clip_coef < 1:
            p.grad.mul_(clip_coef)
    clipped = 0
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-6, atol=0)
        clipped += bool(q.grad.norm() < 3.0 + 1e-3 and q.grad.norm() > 2.9)
    assert clipped > 5


def test_batched_ema_is_bitwise_the_per_tensor_loop():
    student, teacher = micro_pair()
    reference = copy.deepcopy(teacher)
    with torch.no_grad():
        for p in student.parameters():
            p.add_(torch.randn_like(p))
    ema_update(teacher, student, 0.996)
    with torch.no_grad():
        for ps, pt in zip(student.parameters(), reference.parameters()):
            pt.mul_(0.996).add_(ps.detach(), alpha=1 - 0.996)
    for p, q in zip(teacher.parameters(), reference.parameters()):
        assert torch.equal(p, q)


def test_fused_adamw_takes_the_steps_of_the_plain_one():
    fused_model, plain_model = micro_pair()
    fused = torch.optim.AdamW(param_groups(fused_model), lr=1e-3, weight_decay=0.04, fused=True)
    plain = torch.optim.AdamW(param_groups(plain_model), lr=1e-3, weight_decay=0.04)
    for step in range(3):
        random_grads(fused_model, seed=step)
        random_grads(plain_model, seed=step)
        fused.step()
        plain.step()
    for p, q in zip(fused_model.parameters(), plain_model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_compiled_blocks_give_the_eager_loss_and_gradients_within_bf16_tolerance():
    eager, teacher = micro_pair()
    compiled = copy.deepcopy(eager)
    compile_blocks(compiled, True)
    assert compiled.state_dict().keys() == eager.state_dict().keys()  # official names survive compilation
    torch.manual_seed(2)
    views = [torch.randn(2, 3, 4, 32, 32), torch.randn(2, 3, 2, 16, 16), torch.randn(2, 3, 2, 16, 16)]
    pairs = view_pairs({"local_to_global": True, "global_to_global": True}, 1, 2, [0])
    results = []
    for model in (eager, compiled):
        loss, *_ = svt_loss(model, teacher, SVTLoss(32), views, pairs, 0.04, 1, torch.bfloat16)
        loss.backward()
        results.append((loss.detach(), [p.grad for p in model.parameters()]))
    (loss_e, grads_e), (loss_c, grads_c) = results
    torch.testing.assert_close(loss_c, loss_e, rtol=2e-2, atol=1e-3)
    num = sum(float((a - b).float().norm() ** 2) for a, b in zip(grads_c, grads_e) if a is not None) ** 0.5
    den = sum(float(b.float().norm() ** 2) for b in grads_e if b is not None) ** 0.5
    assert num / den < 2e-2, f"relative gradient difference {num / den:.3g}"


def test_cpu_bf16_attention_computes_the_fp32_attention_of_its_inputs():
    from svt.model import attend

    torch.manual_seed(3)
    q, k, v = (torch.randn(4, 3, 17, 16).bfloat16().requires_grad_() for _ in range(3))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = attend(q, k, v)
    assert out.dtype == torch.bfloat16
    ref = torch.nn.functional.scaled_dot_product_attention(q.double(), k.double(), v.double())
    assert float((out.double() - ref).norm() / ref.norm()) < 5e-3  # bf16 rounding of the output alone
    out.float().sum().backward()
    assert all(t.grad is not None and torch.isfinite(t.grad).all() for t in (q, k, v))


def test_the_bf16_model_step_gives_the_fp32_loss_and_gradients_within_bf16_tolerance():
    model, _ = micro_pair()
    model.train()
    video = torch.randn(2, 3, 4, 32, 32)
    grads, outs = [], []
    for bf16 in (False, True):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model([video])
        out.float().square().mean().backward()
        outs.append(out.float().detach())
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
        model.zero_grad(set_to_none=True)
    assert float((outs[1] - outs[0]).norm() / outs[0].norm()) < 3e-2
    assert float((grads[1] - grads[0]).norm() / grads[0].norm()) < 5e-2
