include $(sort $(wildcard $(BR2_EXTERNAL_THINSHADOW_PATH)/package/*/*.mk))
