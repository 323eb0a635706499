"""Attribution: which pixels made the network answer as it did, and whether that can be trusted.

* `methods` - `Attributor`: saliency, gradient x input, SmoothGrad, integrated gradients (with
  its completeness check), Grad-CAM on every conv layer and occlusion, batched and compiled,
  for a class's logit or the difference of two ("4 rather than 9");
* `faithfulness` - deletion and insertion curves against a random and a Sobel-edge order, and
  the cascading model-randomisation check, for every method;
* `verdicts` - both at once on a batch (`measure`), with the verdict per method that the reports
  print, and the "what makes a c a c and not a d" section of `make analyze`.

Importing the package is cheap; TensorFlow comes with the submodules.
"""
