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


def paper_like_step(depth: int, backend: str):
    """One pretraining step's forward passes through compiled blocks: the paper's six view shapes scaled down
    (globals 16 and 8 frames, locals 2/4/8/16), student on every view, teacher (no grad) on both globals."""
    from svt.device import GraphCount

    torch.manual_seed(0)
    student = MultiCropWrapper(build_backbone("vit_micro_patch8", img_size=32, num_frames=16, depth=depth,
                                              drop_path_rate=0.3), build_head(64, out_dim=32, hidden_dim=48,
                                                                               bottleneck_dim=16))
    teacher = copy.deepcopy(student)
    for m in (student, teacher):
        compile_blocks(m, True, backend)
    shapes = [(16, 32), (8, 32), (2, 16), (4, 16), (8, 16), (16, 16)]
    views = [torch.randn(1, 3, t, s, s) for t, s in shapes]
    pairs = view_pairs({"local_to_global": True, "global_to_global": True}, 2, 4, [0, 1])
    with GraphCount() as count:
        loss, *_ = svt_loss(student, teacher, SVTLoss(32), views, pairs, 0.04, 2, None)
        loss.backward()
    return count, len(shapes)


def test_compiled_blocks_build_one_graph_per_view_shape_for_all_blocks_student_and_teacher():
    count, n_shapes = paper_like_step(depth=4, backend="eager")  # rates 0, 0.1, 0.2, 0.3: one graph regardless
    assert count.graphs["Block"] == n_shapes + 2, count.recompiles  # student: 6 shapes; teacher: the 2 globals
    assert count.graphs["Block"] <= 2 * n_shapes
    assert len(count.recompiles) == count.graphs["Block"] - 1 + count.graphs["DINOHead"] - 1
    assert not any("drop" in reason for reason in count.recompiles), count.recompiles


def test_compiled_stochastic_depth_keeps_samples_at_the_blocks_rate_and_rescales_them():
    from svt.model import DropPath

    for rate in (0.1, 0.3):
        eager, compiled = DropPath(rate), DropPath(rate)
        compiled.compile(backend="eager", dynamic=False)
        for module in (eager, compiled):
            out = module(torch.ones(40000, 1, 1)).flatten()
            kept = out > 0
            assert torch.allclose(out[kept], torch.full_like(out[kept], 1 / (1 - rate)))
            se = ((1 - rate) * rate / out.numel()) ** 0.5
            assert abs(kept.float().mean().item() - (1 - rate)) < 4 * se
        assert torch.equal(DropPath(rate).eval()(torch.ones(5, 2)), torch.ones(5, 2))  # no drop at evaluation


@pytest.mark.slow
def test_an_inductor_compiled_block_with_stochastic_depth_gives_the_traced_loss_and_gradients():
    """Inductor's code against Dynamo's graph run op by op, with the same random draws (fallback_random), so
    that the dropped samples agree: forward and gradients within bf16 tolerance."""
    import torch._inductor.config as inductor

    from svt.model import Block

    results = []
    for backend in ("eager", "inductor"):
        torch.manual_seed(0)
        block = Block(64, 2, 256, drop_path=0.5)
        block.compile(backend=backend, dynamic=False)
        x = torch.randn(8, 1 + 16 * 4, 64, requires_grad=True)
        with inductor.patch(fallback_random=True), torch.autocast("cpu", dtype=torch.bfloat16):
            torch.manual_seed(1)
            out = block(x, 4)
        out.float().square().mean().backward()
        results.append((out.detach().float(), x.grad, [p.grad for p in block.parameters()]))
    (out_e, gx_e, grads_e), (out_c, gx_c, grads_c) = results
    torch.manual_seed(0)
    undropped = Block(64, 2, 256, drop_path=0.0)
    assert not torch.allclose(out_e, undropped(x.detach(), 4), atol=1e-2)  # samples were dropped
    torch.testing.assert_close(out_c, out_e, rtol=2e-2, atol=2e-2)
    num = sum(float((a - b).norm() ** 2) for a, b in zip([gx_c, *grads_c], [gx_e, *grads_e]) if b is not None) ** 0.5
    den = sum(float(b.norm() ** 2) for b in [gx_e, *grads_e] if b is not None) ** 0.5
    assert num / den < 2e-2, f"relative gradient difference {num / den:.3g}"
