import torch

from mimae.analysis.lipschitz import complementary_keep, decoder_input, decoder_output, lipschitz_ratios
from mimae.analysis.loading import Pretrained
from mimae.objectives import build_objective
from tests.conftest import tiny_config


def model():
    torch.manual_seed(0)
    cfg = tiny_config()
    objective = build_objective(cfg, 1).eval()
    with torch.no_grad():
        objective.decoder.mask_token.normal_()
    return Pretrained(objective, cfg, 0, None)


def test_split_decoder_composes_to_the_decoder():
    decoder = model().objective.decoder
    latent, keep = torch.randn(2, 5, 32), torch.tensor([[0, 3, 7, 12], [1, 2, 14, 15]])
    with torch.no_grad():
        torch.testing.assert_close(decoder_output(decoder, decoder_input(decoder, latent, keep)),
                                   decoder(latent, keep), atol=1e-6, rtol=1e-6)


def test_complementary_keep_partitions_the_patches():
    mask = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 1.0, 1.0]])
    visible, hidden = complementary_keep(mask)
    assert visible.tolist() == [[1], [0]] and hidden.tolist() == [[0, 2, 3], [1, 2, 3]]


def test_ratio_matches_a_direct_computation():
    m = model()
    encoder, decoder = m.objective.encoder, m.objective.decoder
    images = torch.randn(2, 1, 16, 16)
    mask = torch.zeros(2, 16)
    mask[0, [0, 1, 2, 3, 5, 8, 9, 10, 11, 12, 14, 15]] = 1  # 12 hidden, 4 visible
    mask[1, 4:] = 1
    got = lipschitz_ratios(m, images, mask)
    for i in range(2):
        visible = (mask[i] == 0).nonzero().flatten().unsqueeze(0)
        hidden = (mask[i] == 1).nonzero().flatten().unsqueeze(0)
        with torch.no_grad():
            z1, z2 = encoder(images[i:i + 1], visible), encoder(images[i:i + 1], hidden)
            out1, out2 = decoder(z1, visible), decoder(z2, hidden)  # the decoder's own forward
            numerator = sum(((out1[0, p] - out2[0, p]) ** 2).sum() for p in hidden[0].tolist())
            e1, e2, token = decoder.embed(z1)[0], decoder.embed(z2)[0], decoder.mask_token[0, 0]
            denominator = ((e1[0] - e2[0]) ** 2).sum()  # [CLS]
            denominator += sum(((e1[1 + k] - token) ** 2).sum() for k in range(visible.shape[1]))
            denominator += sum(((token - e2[1 + k]) ** 2).sum() for k in range(hidden.shape[1]))
        torch.testing.assert_close(got[i], numerator / denominator, atol=1e-5, rtol=1e-4)
