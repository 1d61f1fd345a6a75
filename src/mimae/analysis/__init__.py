"""The papers' analyses, one module each; every one writes a PNG and the numbers behind it (JSON).

* ``reconstruct``: reconstruction grids and SSIM / FSIM / PSNR / MSE against the original (paper 003, Fig. 5)
* ``attention``: last-block [CLS] and chosen-token attention maps (paper 003, Fig. 6-7)
* ``tsne``: t-SNE of encoder features by class (paper 001 Fig. 4, paper 003 Fig. 8)
* ``mask_geometry``: masked-view distances within and across classes over the mask ratio (paper 001, Fig. 3)
* ``lipschitz``: the decoder's empirical Lipschitz estimate along training (paper 001, Sec. 3.2)
* ``curves``: training curves with the eps_l line (paper 000, Fig. 3)

``mimae analyze <name>`` runs them from the command line (``mimae.cli.analysis``).
"""
