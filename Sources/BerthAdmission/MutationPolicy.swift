import BerthModel
